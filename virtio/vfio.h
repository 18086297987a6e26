// VFIO type1 ownership of a PCI device behind the IOMMU. Each kernel object is owned by exactly one
// move-only RAII type: the container, the group, the device, each BAR mapping, each DMA buffer
// (unmapped from the IOMMU before its memory is freed), each eventfd and the MSI-X routing.
// Errors are values naming the step and errno.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace capnet::virtio {

enum class VfioError : uint8_t { kFailed = 0, kNotFound };
template <typename T>
using VfioResult = Result<T, VfioError>;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd();
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_ = -1;
};

// Where the NIC is: found by scanning sysfs for a virtio-net (1af4:1041) device bound to vfio-pci.
struct PciLocation {
  std::string address;   // "0000:00:02.0"
  int group = -1;        // /dev/vfio/<group>
};
// `sysfsRoot` is "/sys" in the guest; tests pass a fake tree.
VfioResult<PciLocation> discoverNic(const std::string& sysfsRoot, const std::string& wantAddress = "");

class DmaBuffer;

// The container, the group in it, and the device: opened together, torn down in reverse.
class VfioDevice {
 public:
  static VfioResult<std::unique_ptr<VfioDevice>> open(const PciLocation& where);
  ~VfioDevice();

  // PCI configuration space (region 7), through pread/pwrite.
  VfioResult<Ok> readConfig(uint32_t offset, std::span<uint8_t> out) const;
  VfioResult<Ok> writeConfig(uint32_t offset, std::span<const uint8_t> in) const;
  // The whole config space, as far as the region goes (max 4 KiB), for capability parsing.
  VfioResult<std::vector<uint8_t>> configSpace() const;

  // Maps BAR `index` into memory (it must be mmappable). Owned by the device.
  VfioResult<std::span<uint8_t>> mapBar(uint32_t index);

  // Allocates `bytes` of zeroed, page-aligned memory and maps it into the IOMMU at a fresh IOVA.
  VfioResult<std::unique_ptr<DmaBuffer>> allocateDma(size_t bytes);

  // Routes MSI-X vectors 0..n-1 to new eventfds (VFIO_DEVICE_SET_IRQS). Returns their fds (owned
  // by the device; disabled again on destruction).
  VfioResult<std::vector<int>> enableMsix(uint32_t vectors);

  const std::string& address() const { return address_; }
  // Size of region `index` (BARs 0..5), 0 when absent.
  uint64_t regionSize(uint32_t index) const { return index < regions_.size() ? regions_[index].size : 0; }

 private:
  VfioDevice() = default;
  Fd container_, group_, device_;
  std::string address_;
  struct Region {
    uint64_t offset = 0, size = 0;
    uint32_t flags = 0;
  };
  std::vector<Region> regions_;
  struct Mapping {
    void* addr = nullptr;
    size_t size = 0;
  };
  std::vector<Mapping> bars_;
  std::vector<Fd> irqFds_;
  bool msixEnabled_ = false;
  uint64_t nextIova_ = 0x100000;   // IOVAs handed out upwards from 1 MiB, page aligned.
  friend class DmaBuffer;
};

class DmaBuffer {
 public:
  ~DmaBuffer();
  DmaBuffer(const DmaBuffer&) = delete;
  DmaBuffer& operator=(const DmaBuffer&) = delete;
  std::span<uint8_t> bytes() { return {static_cast<uint8_t*>(addr_), size_}; }
  uint64_t iova() const { return iova_; }
  size_t size() const { return size_; }

 private:
  friend class VfioDevice;
  DmaBuffer(int container, void* addr, size_t size, uint64_t iova) : container_(container), addr_(addr), size_(size), iova_(iova) {}
  int container_;
  void* addr_;
  size_t size_;
  uint64_t iova_;
};

}  // namespace capnet::virtio

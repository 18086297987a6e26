#include "virtio/vfio.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/file.h"

namespace capnet::virtio {
namespace {

Error<VfioError> sysErr(const std::string& what) {
  return fail(VfioError::kFailed, what + ": " + std::strerror(errno));
}

// The first line of a sysfs attribute (empty when it cannot be read).
std::string readLine(const std::string& path) {
  auto read = readFileBounded(path, 64 * 1024);
  if (!read.ok()) return "";
  std::string s = read.value().substr(0, read.value().find('\n'));
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string linkName(const std::string& path) {
  char buf[512];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string target(buf, static_cast<size_t>(n));
  auto slash = target.rfind('/');
  return slash == std::string::npos ? target : target.substr(slash + 1);
}

}  // namespace

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

VfioResult<PciLocation> discoverNic(const std::string& sysfsRoot, const std::string& wantAddress) {
  std::string base = sysfsRoot + "/bus/pci/devices";
  DIR* dir = ::opendir(base.c_str());
  if (dir == nullptr) return fail(VfioError::kNotFound, "no " + base);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') names.push_back(e->d_name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    if (!wantAddress.empty() && name != wantAddress) continue;
    std::string dev = base + "/" + name;
    if (readLine(dev + "/vendor") != "0x1af4" || readLine(dev + "/device") != "0x1041") continue;
    if (linkName(dev + "/driver") != "vfio-pci") continue;
    std::string group = linkName(dev + "/iommu_group");
    char* end = nullptr;
    long g = std::strtol(group.c_str(), &end, 10);
    if (group.empty() || *end != '\0' || g < 0 || g > 1000000) {
      return fail(VfioError::kNotFound, "device " + name + " has no IOMMU group");
    }
    return PciLocation{name, static_cast<int>(g)};
  }
  return fail(VfioError::kNotFound, "no virtio-net device (1af4:1041) bound to vfio-pci");
}

VfioResult<std::unique_ptr<VfioDevice>> VfioDevice::open(const PciLocation& where) {
  std::unique_ptr<VfioDevice> d(new VfioDevice());
  d->address_ = where.address;
  d->container_ = Fd(::open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC));
  if (d->container_.get() < 0) return sysErr("open /dev/vfio/vfio");
  if (::ioctl(d->container_.get(), VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
    return fail(VfioError::kFailed, "unexpected VFIO API version");
  }
  if (::ioctl(d->container_.get(), VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) != 1) {
    return fail(VfioError::kFailed, "VFIO type1 IOMMU not supported (is the IOMMU on?)");
  }
  std::string groupPath = "/dev/vfio/" + std::to_string(where.group);
  d->group_ = Fd(::open(groupPath.c_str(), O_RDWR | O_CLOEXEC));
  if (d->group_.get() < 0) return sysErr("open " + groupPath);
  vfio_group_status status{};
  status.argsz = sizeof(status);
  if (::ioctl(d->group_.get(), VFIO_GROUP_GET_STATUS, &status) != 0) return sysErr("VFIO_GROUP_GET_STATUS");
  if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
    return fail(VfioError::kFailed, "IOMMU group " + std::to_string(where.group) + " is not viable (another device in it has a host driver)");
  }
  int containerFd = d->container_.get();
  if (::ioctl(d->group_.get(), VFIO_GROUP_SET_CONTAINER, &containerFd) != 0) return sysErr("VFIO_GROUP_SET_CONTAINER");
  if (::ioctl(d->container_.get(), VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) != 0) return sysErr("VFIO_SET_IOMMU");
  d->device_ = Fd(::ioctl(d->group_.get(), VFIO_GROUP_GET_DEVICE_FD, where.address.c_str()));
  if (d->device_.get() < 0) return sysErr("VFIO_GROUP_GET_DEVICE_FD " + where.address);
  vfio_device_info info{};
  info.argsz = sizeof(info);
  if (::ioctl(d->device_.get(), VFIO_DEVICE_GET_INFO, &info) != 0) return sysErr("VFIO_DEVICE_GET_INFO");
  if (!(info.flags & VFIO_DEVICE_FLAGS_PCI) || info.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX) {
    return fail(VfioError::kFailed, "not a PCI device");
  }
  d->regions_.resize(info.num_regions);
  d->bars_.resize(VFIO_PCI_ROM_REGION_INDEX);
  for (uint32_t i = 0; i < info.num_regions; ++i) {
    vfio_region_info r{};
    r.argsz = sizeof(r);
    r.index = i;
    if (::ioctl(d->device_.get(), VFIO_DEVICE_GET_REGION_INFO, &r) != 0) continue;
    d->regions_[i] = Region{r.offset, r.size, r.flags};
  }
  // Bus mastering (DMA) and memory space: the device may not DMA until netd says so.
  uint8_t cmd[2];
  if (auto r = d->readConfig(4, cmd); !r.ok()) return r.error();
  uint16_t command = static_cast<uint16_t>(cmd[0] | (cmd[1] << 8));
  command |= 0x6;   // memory space (bit 1) | bus master (bit 2)
  cmd[0] = static_cast<uint8_t>(command);
  cmd[1] = static_cast<uint8_t>(command >> 8);
  if (auto r = d->writeConfig(4, cmd); !r.ok()) return r.error();
  return d;
}

VfioDevice::~VfioDevice() {
  if (msixEnabled_) {
    vfio_irq_set off{};
    off.argsz = sizeof(off);
    off.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
    off.index = VFIO_PCI_MSIX_IRQ_INDEX;
    off.start = 0;
    off.count = 0;
    ::ioctl(device_.get(), VFIO_DEVICE_SET_IRQS, &off);
  }
  for (auto& m : bars_) {
    if (m.addr != nullptr) ::munmap(m.addr, m.size);
  }
  // Fds close in reverse declaration order: device, group, container.
}

VfioResult<Ok> VfioDevice::readConfig(uint32_t offset, std::span<uint8_t> out) const {
  const Region& cfg = regions_[VFIO_PCI_CONFIG_REGION_INDEX];
  if (offset + out.size() > cfg.size) return fail(VfioError::kFailed, "config read out of range");
  ssize_t n = ::pread(device_.get(), out.data(), out.size(), static_cast<off_t>(cfg.offset + offset));
  if (n != static_cast<ssize_t>(out.size())) return sysErr("config read");
  return Ok{};
}

VfioResult<Ok> VfioDevice::writeConfig(uint32_t offset, std::span<const uint8_t> in) const {
  const Region& cfg = regions_[VFIO_PCI_CONFIG_REGION_INDEX];
  if (offset + in.size() > cfg.size) return fail(VfioError::kFailed, "config write out of range");
  ssize_t n = ::pwrite(device_.get(), in.data(), in.size(), static_cast<off_t>(cfg.offset + offset));
  if (n != static_cast<ssize_t>(in.size())) return sysErr("config write");
  return Ok{};
}

VfioResult<std::vector<uint8_t>> VfioDevice::configSpace() const {
  const Region& cfg = regions_[VFIO_PCI_CONFIG_REGION_INDEX];
  std::vector<uint8_t> bytes(std::min<uint64_t>(cfg.size, 4096));
  if (auto r = readConfig(0, bytes); !r.ok()) return r.error();
  return bytes;
}

VfioResult<std::span<uint8_t>> VfioDevice::mapBar(uint32_t index) {
  if (index >= bars_.size()) return fail(VfioError::kFailed, "no BAR " + std::to_string(index));
  if (bars_[index].addr != nullptr) return std::span<uint8_t>(static_cast<uint8_t*>(bars_[index].addr), bars_[index].size);
  const Region& r = regions_[index];
  if (r.size == 0 || !(r.flags & VFIO_REGION_INFO_FLAG_MMAP)) {
    return fail(VfioError::kFailed, "BAR " + std::to_string(index) + " cannot be mapped");
  }
  void* addr = ::mmap(nullptr, r.size, PROT_READ | PROT_WRITE, MAP_SHARED, device_.get(), static_cast<off_t>(r.offset));
  if (addr == MAP_FAILED) return sysErr("mmap BAR " + std::to_string(index));
  bars_[index] = Mapping{addr, r.size};
  return std::span<uint8_t>(static_cast<uint8_t*>(addr), r.size);
}

VfioResult<std::unique_ptr<DmaBuffer>> VfioDevice::allocateDma(size_t bytes) {
  const size_t page = 4096;
  size_t size = (bytes + page - 1) & ~(page - 1);
  void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (addr == MAP_FAILED) return sysErr("mmap DMA buffer");
  vfio_iommu_type1_dma_map map{};
  map.argsz = sizeof(map);
  map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
  map.vaddr = reinterpret_cast<uint64_t>(addr);
  map.iova = nextIova_;
  map.size = size;
  // The IOMMU pins the pages and lets the device reach exactly this range, nothing else.
  if (::ioctl(container_.get(), VFIO_IOMMU_MAP_DMA, &map) != 0) {
    auto e = sysErr("VFIO_IOMMU_MAP_DMA");
    ::munmap(addr, size);
    return e;
  }
  std::unique_ptr<DmaBuffer> b(new DmaBuffer(container_.get(), addr, size, nextIova_));
  nextIova_ += size + page;   // a guard page between buffers in IOVA space.
  return b;
}

DmaBuffer::~DmaBuffer() {
  vfio_iommu_type1_dma_unmap unmap{};
  unmap.argsz = sizeof(unmap);
  unmap.iova = iova_;
  unmap.size = size_;
  // Unmap from the IOMMU first: the device must lose access before the memory is reused.
  ::ioctl(container_, VFIO_IOMMU_UNMAP_DMA, &unmap);
  ::munmap(addr_, size_);
}

VfioResult<std::vector<int>> VfioDevice::enableMsix(uint32_t vectors) {
  vfio_irq_info info{};
  info.argsz = sizeof(info);
  info.index = VFIO_PCI_MSIX_IRQ_INDEX;
  if (::ioctl(device_.get(), VFIO_DEVICE_GET_IRQ_INFO, &info) != 0) return sysErr("VFIO_DEVICE_GET_IRQ_INFO");
  if (info.count < vectors) {
    return fail(VfioError::kFailed, "device has " + std::to_string(info.count) + " MSI-X vectors, need " + std::to_string(vectors));
  }
  std::vector<int> fds;
  for (uint32_t i = 0; i < vectors; ++i) {
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) return sysErr("eventfd");
    irqFds_.emplace_back(fd);
    fds.push_back(fd);
  }
  std::vector<uint8_t> buf(sizeof(vfio_irq_set) + sizeof(int32_t) * vectors);
  auto* set = reinterpret_cast<vfio_irq_set*>(buf.data());
  set->argsz = static_cast<uint32_t>(buf.size());
  set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
  set->index = VFIO_PCI_MSIX_IRQ_INDEX;
  set->start = 0;
  set->count = vectors;
  std::memcpy(set->data, fds.data(), sizeof(int32_t) * vectors);
  if (::ioctl(device_.get(), VFIO_DEVICE_SET_IRQS, set) != 0) return sysErr("VFIO_DEVICE_SET_IRQS");
  msixEnabled_ = true;
  return fds;
}

}  // namespace capnet::virtio

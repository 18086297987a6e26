// virtio-net over VFIO: the NIC netd owns. Modern (1.x) PCI transport only, with
// VIRTIO_F_ACCESS_PLATFORM negotiated (all device memory accesses go through the IOMMU), one
// receive queue driven by an MSI-X eventfd and one transmit queue reclaimed by polling. Frames
// cross the API without the 12-byte virtio_net_hdr_v1, which this class adds and checks.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "virtio/split-queue.h"
#include "virtio/vfio.h"

namespace capnet::virtio {

inline constexpr size_t kNetHeaderBytes = 12;   // virtio_net_hdr_v1 (VIRTIO_F_VERSION_1)
inline constexpr size_t kBufferBytes = 2048;    // header + a 1514-byte frame, rounded up
inline constexpr size_t kMaxFrameBytes = 1514;

class VirtioNet {
 public:
  static VfioResult<std::unique_ptr<VirtioNet>> open(const PciLocation& where, uint16_t maxQueueSize = 256);
  ~VirtioNet();

  std::array<uint8_t, 6> mac() const { return mac_; }
  // Queues one frame (without header). false when every transmit buffer is in flight, the frame is
  // too large, or the device broke the protocol.
  // Queues a frame on the transmit ring. The device is notified by flushTx() (once for a burst:
  // a notification is a register write the hypervisor traps), or at once when kTxBatch frames wait.
  bool transmit(std::span<const uint8_t> frame);
  void flushTx();
  static constexpr unsigned kTxBatch = 32;
  // Delivers received frames (without header) and re-posts their buffers. Touches memory only (no
  // system call, no register read), so the stack may poll it after every read and write.
  size_t receive(const std::function<void(std::span<const uint8_t>)>& deliver);
  // Drains the receive interrupt's eventfd: the event loop calls it when the fd is readable.
  void acknowledgeInterrupt();
  // Reads the device status and records a reset the device asks for (receive() then delivers
  // nothing). A trapped register read: called on a timer, not per poll.
  void checkStatus();
  int rxEventFd() const { return rxEventFd_; }
  bool broken() const;
  // Why the device no longer works (it asked for a reset, or broke the ring protocol); empty while it works.
  std::string failure() const;
  std::string describe() const;

  struct Stats {
    uint64_t rx = 0, tx = 0, rxBad = 0, txFull = 0, kicks = 0, wakeups = 0;   // wakeups: interrupts acknowledged
  };
  const Stats& stats() const { return stats_; }

 private:
  VirtioNet() = default;
  struct Queue;
  VfioResult<Ok> setupQueue(uint16_t index, uint16_t maxSize, uint16_t msixVector, Queue& q);
  void kick(Queue& q);
  unsigned txUnnotified_ = 0;   // frames published since the last transmit notification
  void reclaimTx();

  // Declared first so it is destroyed last: the DMA buffers below unmap through its container.
  std::unique_ptr<VfioDevice> device_;
  // SAFETY: these point into BAR mappings owned by device_; every window was bounds-checked
  // against its BAR by parseVirtioCaps.
  volatile uint8_t* common_ = nullptr;
  volatile uint8_t* notifyBase_ = nullptr;
  volatile uint8_t* deviceCfg_ = nullptr;
  uint32_t notifyMultiplier_ = 0;
  uint32_t notifyLength_ = 0;
  std::unique_ptr<Queue> rx_, tx_;
  std::array<uint8_t, 6> mac_{};
  int rxEventFd_ = -1;
  uint64_t features_ = 0;
  Stats stats_;
  std::string brokenReason_;
};

}  // namespace capnet::virtio

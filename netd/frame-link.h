// An Ethernet link as lwIP's netif sees it: whole frames in and out, no virtio header. The
// guest's link is virtio/'s NetDevice behind VFIO (adapter in netd/); host tests use in-memory
// links. Device access knows nothing of TCP; TCP knows nothing of virtqueues.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace capnet {

class FrameLink {
 public:
  virtual ~FrameLink() = default;

  virtual std::array<uint8_t, 6> mac() const = 0;
  virtual uint16_t mtu() const = 0;   // payload MTU, 1500 for virtio-net without negotiation.

  // Queues one frame for transmission. false when the transmit ring is full or the frame is
  // larger than mtu + 14 (the caller drops it, as a NIC would).
  virtual bool transmit(std::span<const uint8_t> frame) = 0;

  // Delivers every frame received so far to `deliver` (each span valid only during the call).
  // Returns the number delivered.
  virtual size_t poll(const std::function<void(std::span<const uint8_t>)>& deliver) = 0;

  // An fd that becomes readable when frames may be waiting (the MSI-X eventfd); -1 if the link
  // must be polled. The event loop waits on it; netd never busy-spins when idle.
  virtual int eventFd() const = 0;

  // Called by the event loop when eventFd() became readable, before it polls: acknowledges the
  // wake-up. poll() itself does no system call, so the stack may poll after every read and write.
  virtual void acknowledge() {}

  // Called on the stack's timer (about once a second): checks the device's health, which costs
  // a trapped register read, too dear for every poll.
  virtual void checkHealth() {}

  // Why the link no longer works (the device asked for a reset, broke the ring protocol); empty
  // while it works. The stack then reports itself down and refuses connects.
  virtual std::string failure() const { return {}; }

  // Hands queued frames to the device (one notification for a burst). transmit() may hold frames
  // until then; the stack calls flush() after every burst of output.
  virtual void flush() {}

  // The link's own counters as "key=value ..." (frames, notifications, wake-ups), for netd's
  // status and the benchmark's profile; empty when the link keeps none.
  virtual std::string counters() const { return {}; }
};

}  // namespace capnet

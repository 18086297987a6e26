// netd's FrameLink over the VFIO-owned virtio-net device (virtio/net-device.h).
#pragma once

#include <memory>
#include <string>

#include "netd/frame-link.h"
#include "virtio/net-device.h"

namespace capnet {

class VirtioLink final : public FrameLink {
 public:
  explicit VirtioLink(std::unique_ptr<virtio::VirtioNet> nic) : nic_(std::move(nic)) {}
  std::array<uint8_t, 6> mac() const override { return nic_->mac(); }
  uint16_t mtu() const override { return 1500; }
  bool transmit(std::span<const uint8_t> frame) override { return nic_->transmit(frame); }
  void flush() override { nic_->flushTx(); }
  size_t poll(const std::function<void(std::span<const uint8_t>)>& deliver) override { return nic_->receive(deliver); }
  int eventFd() const override { return nic_->rxEventFd(); }
  void acknowledge() override { nic_->acknowledgeInterrupt(); }
  void checkHealth() override { nic_->checkStatus(); }
  std::string failure() const override { return nic_->failure(); }
  std::string counters() const override {
    const auto& s = nic_->stats();
    return "rx-frames=" + std::to_string(s.rx) + " tx-frames=" + std::to_string(s.tx) + " kicks=" + std::to_string(s.kicks) +
           " rx-wakeups=" + std::to_string(s.wakeups) + " tx-full=" + std::to_string(s.txFull);
  }
  virtio::VirtioNet& nic() { return *nic_; }

 private:
  std::unique_ptr<virtio::VirtioNet> nic_;
};

}  // namespace capnet

#include "virtio/net-device.h"

#include <time.h>
#include <unistd.h>

#include <cstring>

#include "virtio/pci-caps.h"

namespace capnet::virtio {
namespace {

// Common configuration structure offsets (virtio 1.1 §4.1.4.3).
constexpr uint32_t kDeviceFeatureSelect = 0x00, kDeviceFeature = 0x04, kDriverFeatureSelect = 0x08,
                   kDriverFeature = 0x0c, kMsixConfig = 0x10, kNumQueues = 0x12, kDeviceStatus = 0x14,
                   kQueueSelect = 0x16, kQueueSize = 0x18, kQueueMsixVector = 0x1a, kQueueEnable = 0x1c,
                   kQueueNotifyOff = 0x1e, kQueueDesc = 0x20, kQueueDriver = 0x28, kQueueDevice = 0x30;

constexpr uint8_t kAcknowledge = 1, kDriver = 2, kDriverOk = 4, kFeaturesOk = 8, kNeedsReset = 64, kFailed = 128;
constexpr uint64_t kFeatureMac = 1ull << 5;
constexpr uint64_t kFeatureVersion1 = 1ull << 32;
constexpr uint64_t kFeatureAccessPlatform = 1ull << 33;
constexpr uint16_t kNoVector = 0xffff;

// SAFETY (all MMIO helpers): `base` points into a BAR mapping and `off` lies inside a window that
// parseVirtioCaps checked against that BAR; accesses are naturally aligned and volatile.
uint8_t rd8(volatile uint8_t* base, uint32_t off) { return base[off]; }
uint16_t rd16(volatile uint8_t* base, uint32_t off) { return *reinterpret_cast<volatile uint16_t*>(base + off); }
uint32_t rd32(volatile uint8_t* base, uint32_t off) { return *reinterpret_cast<volatile uint32_t*>(base + off); }
void wr8(volatile uint8_t* base, uint32_t off, uint8_t v) { base[off] = v; }
void wr16(volatile uint8_t* base, uint32_t off, uint16_t v) { *reinterpret_cast<volatile uint16_t*>(base + off) = v; }
void wr32(volatile uint8_t* base, uint32_t off, uint32_t v) { *reinterpret_cast<volatile uint32_t*>(base + off) = v; }
void wr64(volatile uint8_t* base, uint32_t off, uint64_t v) {
  wr32(base, off, static_cast<uint32_t>(v));
  wr32(base, off + 4, static_cast<uint32_t>(v >> 32));
}

void sleepMs(int ms) {
  timespec ts{0, ms * 1000000L};
  nanosleep(&ts, nullptr);
}

}  // namespace

struct VirtioNet::Queue {
  uint16_t index = 0;
  std::unique_ptr<DmaBuffer> ring;
  std::unique_ptr<DmaBuffer> buffers;   // size × kBufferBytes
  std::unique_ptr<SplitQueue> queue;
  uint16_t notifyOff = 0;
  std::vector<uint16_t> bufferOfId;     // descriptor head id -> buffer slot
  std::vector<uint16_t> freeSlots;      // TX only
};

VfioResult<std::unique_ptr<VirtioNet>> VirtioNet::open(const PciLocation& where, uint16_t maxQueueSize) {
  std::unique_ptr<VirtioNet> n(new VirtioNet());
  auto dev = VfioDevice::open(where);
  if (!dev.ok()) return dev.error();
  n->device_ = std::move(dev).value();
  auto config = n->device_->configSpace();
  if (!config.ok()) return config.error();
  std::array<uint64_t, 6> bars{};
  for (uint32_t i = 0; i < 6; ++i) bars[i] = n->device_->regionSize(i);
  auto caps = parseVirtioCaps(config.value(), bars);
  if (!caps.ok()) return fail(VfioError::kFailed, caps.message());
  auto window = [&](const CapWindow& w) -> VfioResult<volatile uint8_t*> {
    auto bar = n->device_->mapBar(w.bar);
    if (!bar.ok()) return bar.error();
    return static_cast<volatile uint8_t*>(bar.value().data() + w.offset);
  };
  auto common = window(caps->common);
  auto notify = window(caps->notify);
  auto devcfg = window(caps->device);
  if (!common.ok()) return common.error();
  if (!notify.ok()) return notify.error();
  if (!devcfg.ok()) return devcfg.error();
  n->common_ = common.value();
  n->notifyBase_ = notify.value();
  n->deviceCfg_ = devcfg.value();
  n->notifyMultiplier_ = caps->notifyOffMultiplier;
  n->notifyLength_ = caps->notify.length;

  // Reset through the status register and wait (bounded) for the device to acknowledge it.
  wr8(n->common_, kDeviceStatus, 0);
  for (int i = 0; rd8(n->common_, kDeviceStatus) != 0; ++i) {
    if (i > 100) return fail(VfioError::kFailed, "device did not finish its reset");
    sleepMs(1);
  }
  wr8(n->common_, kDeviceStatus, kAcknowledge | kDriver);

  wr32(n->common_, kDeviceFeatureSelect, 0);
  uint64_t offered = rd32(n->common_, kDeviceFeature);
  wr32(n->common_, kDeviceFeatureSelect, 1);
  offered |= static_cast<uint64_t>(rd32(n->common_, kDeviceFeature)) << 32;
  // Without ACCESS_PLATFORM the device would bypass the IOMMU: refuse such a device.
  for (auto [bit, name] : {std::pair{kFeatureVersion1, "VIRTIO_F_VERSION_1"},
                           std::pair{kFeatureAccessPlatform, "VIRTIO_F_ACCESS_PLATFORM"}}) {
    if (!(offered & bit)) {
      wr8(n->common_, kDeviceStatus, kFailed);
      return fail(VfioError::kFailed, std::string("device does not offer ") + name);
    }
  }
  n->features_ = kFeatureVersion1 | kFeatureAccessPlatform | (offered & kFeatureMac);
  wr32(n->common_, kDriverFeatureSelect, 0);
  wr32(n->common_, kDriverFeature, static_cast<uint32_t>(n->features_));
  wr32(n->common_, kDriverFeatureSelect, 1);
  wr32(n->common_, kDriverFeature, static_cast<uint32_t>(n->features_ >> 32));
  wr8(n->common_, kDeviceStatus, kAcknowledge | kDriver | kFeaturesOk);
  if (!(rd8(n->common_, kDeviceStatus) & kFeaturesOk)) {
    wr8(n->common_, kDeviceStatus, kFailed);
    return fail(VfioError::kFailed, "device refused the feature set (FEATURES_OK not kept)");
  }
  if (rd16(n->common_, kNumQueues) < 2) return fail(VfioError::kFailed, "device has fewer than 2 queues");

  // One MSI-X vector, for receive; configuration changes and transmit completions interrupt nobody.
  auto irqs = n->device_->enableMsix(1);
  if (!irqs.ok()) return irqs.error();
  n->rxEventFd_ = irqs.value()[0];
  wr16(n->common_, kMsixConfig, kNoVector);

  n->rx_ = std::make_unique<Queue>();
  n->tx_ = std::make_unique<Queue>();
  if (auto r = n->setupQueue(0, maxQueueSize, 0, *n->rx_); !r.ok()) return r.error();
  if (auto r = n->setupQueue(1, maxQueueSize, kNoVector, *n->tx_); !r.ok()) return r.error();

  if (n->features_ & kFeatureMac) {
    for (uint32_t i = 0; i < 6; ++i) n->mac_[i] = rd8(n->deviceCfg_, i);
  } else {
    n->mac_ = {0x02, 0x00, 0x00, 0x00, 0x00, 0x0f};   // locally administered
  }

  // Every receive buffer is posted before the device may use the queue.
  auto& rx = *n->rx_;
  for (uint16_t slot = 0; slot < rx.queue->size(); ++slot) {
    Segment s{rx.buffers->iova() + slot * kBufferBytes, static_cast<uint32_t>(kBufferBytes), true};
    auto id = rx.queue->add(std::span<const Segment>(&s, 1));
    if (!id) return fail(VfioError::kFailed, "cannot post receive buffers");
    rx.bufferOfId[*id] = slot;
  }
  rx.queue->publish();
  wr8(n->common_, kDeviceStatus, kAcknowledge | kDriver | kFeaturesOk | kDriverOk);
  n->kick(rx);
  return n;
}

VfioResult<Ok> VirtioNet::setupQueue(uint16_t index, uint16_t maxSize, uint16_t msixVector, Queue& q) {
  wr16(common_, kQueueSelect, index);
  uint16_t deviceMax = rd16(common_, kQueueSize);
  if (deviceMax == 0) return fail(VfioError::kFailed, "queue " + std::to_string(index) + " is not available");
  uint16_t size = 1;
  while (size * 2 <= std::min(deviceMax, maxSize)) size = static_cast<uint16_t>(size * 2);
  wr16(common_, kQueueSize, size);
  q.index = index;
  auto ring = device_->allocateDma(SplitQueue::bytesNeeded(size));
  if (!ring.ok()) return ring.error();
  q.ring = std::move(ring).value();
  auto buffers = device_->allocateDma(static_cast<size_t>(size) * kBufferBytes);
  if (!buffers.ok()) return buffers.error();
  q.buffers = std::move(buffers).value();
  q.queue = std::make_unique<SplitQueue>(size, q.ring->bytes(), q.ring->iova());
  if (q.queue->broken()) return fail(VfioError::kFailed, q.queue->brokenReason());
  q.bufferOfId.assign(size, 0);
  for (uint16_t s = 0; s < size; ++s) q.freeSlots.push_back(s);
  wr16(common_, kQueueMsixVector, msixVector);
  if (rd16(common_, kQueueMsixVector) != msixVector) {
    return fail(VfioError::kFailed, "device refused MSI-X vector for queue " + std::to_string(index));
  }
  wr64(common_, kQueueDesc, q.queue->descIova());
  wr64(common_, kQueueDriver, q.queue->availIova());
  wr64(common_, kQueueDevice, q.queue->usedIova());
  q.notifyOff = rd16(common_, kQueueNotifyOff);
  if (static_cast<uint64_t>(q.notifyOff) * notifyMultiplier_ + 2 > notifyLength_) {
    return fail(VfioError::kFailed, "queue notify offset outside the notify window");
  }
  if (msixVector == kNoVector) q.queue->setInterrupts(false);
  wr16(common_, kQueueEnable, 1);
  return Ok{};
}

VirtioNet::~VirtioNet() {
  // Reset the device before its queues' memory goes away: it must stop DMA first.
  if (common_ != nullptr) wr8(common_, kDeviceStatus, 0);
}

void VirtioNet::kick(Queue& q) {
  if (!q.queue->needsKick()) return;
  ++stats_.kicks;
  wr16(notifyBase_, q.notifyOff * notifyMultiplier_, q.index);
}

bool VirtioNet::broken() const {
  return !brokenReason_.empty() || (rx_ && rx_->queue->broken()) || (tx_ && tx_->queue->broken());
}

std::string VirtioNet::failure() const {
  if (!brokenReason_.empty()) return brokenReason_;
  if (rx_ && rx_->queue->broken()) return "receive queue: " + rx_->queue->brokenReason();
  if (tx_ && tx_->queue->broken()) return "transmit queue: " + tx_->queue->brokenReason();
  return {};
}

std::string VirtioNet::describe() const {
  char mac[32];
  std::snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", mac_[0], mac_[1], mac_[2], mac_[3], mac_[4], mac_[5]);
  std::string s = "virtio-net " + device_->address() + " mac=" + mac + " rxq=" + std::to_string(rx_->queue->size()) +
                  " txq=" + std::to_string(tx_->queue->size());
  if (rx_->queue->broken()) s += " rx-broken=\"" + rx_->queue->brokenReason() + "\"";
  if (tx_->queue->broken()) s += " tx-broken=\"" + tx_->queue->brokenReason() + "\"";
  return s;
}

void VirtioNet::reclaimTx() {
  while (auto u = tx_->queue->nextUsed()) tx_->freeSlots.push_back(tx_->bufferOfId[u->id]);
}

bool VirtioNet::transmit(std::span<const uint8_t> frame) {
  if (frame.size() > kMaxFrameBytes || broken()) return false;
  reclaimTx();
  if (tx_->freeSlots.empty()) {
    ++stats_.txFull;
    flushTx();   // the device must hear of what waits, or the ring never drains
    return false;
  }
  uint16_t slot = tx_->freeSlots.back();
  uint8_t* buf = tx_->buffers->bytes().data() + static_cast<size_t>(slot) * kBufferBytes;
  // SAFETY: slot < queue size, so buf..buf+kBufferBytes lies inside the TX buffer region, and the
  // device does not own this slot (it is on our free list).
  std::memset(buf, 0, kNetHeaderBytes);   // no offloads: flags 0, gso_type NONE
  std::memcpy(buf + kNetHeaderBytes, frame.data(), frame.size());
  Segment s{tx_->buffers->iova() + static_cast<uint64_t>(slot) * kBufferBytes,
            static_cast<uint32_t>(kNetHeaderBytes + frame.size()), false};
  auto id = tx_->queue->add(std::span<const Segment>(&s, 1));
  if (!id) return false;
  tx_->freeSlots.pop_back();
  tx_->bufferOfId[*id] = slot;
  tx_->queue->publish();
  ++stats_.tx;
  if (++txUnnotified_ >= kTxBatch) flushTx();
  return true;
}

void VirtioNet::flushTx() {
  if (txUnnotified_ == 0 || !tx_) return;
  txUnnotified_ = 0;
  kick(*tx_);
}

void VirtioNet::acknowledgeInterrupt() {
  uint64_t count;
  // The eventfd is non-blocking; nothing pending is fine.
  while (::read(rxEventFd_, &count, sizeof(count)) == static_cast<ssize_t>(sizeof(count))) {
  }
  ++stats_.wakeups;
}

void VirtioNet::checkStatus() {
  // A register read QEMU traps (and serves under its global lock): measured as nearly all of
  // receive()'s cost when it ran on every poll, so it runs on the stack's timer instead.
  if (brokenReason_.empty() && (rd8(common_, kDeviceStatus) & kNeedsReset)) brokenReason_ = "device needs reset";
}

size_t VirtioNet::receive(const std::function<void(std::span<const uint8_t>)>& deliver) {
  // Memory only (the used ring and the buffers): no system call, no register read. The
  // interrupt is acknowledged by acknowledgeInterrupt(), the device's health read by
  // checkStatus().
  if (!brokenReason_.empty()) return 0;
  size_t delivered = 0;
  bool reposted = false;
  auto& rx = *rx_;
  while (auto u = rx.queue->nextUsed()) {
    uint16_t slot = rx.bufferOfId[u->id];
    const uint8_t* buf = rx.buffers->bytes().data() + static_cast<size_t>(slot) * kBufferBytes;
    // nextUsed() guarantees len <= kBufferBytes (the chain's writable size).
    if (u->len < kNetHeaderBytes + 14 || u->len > kNetHeaderBytes + kMaxFrameBytes + 4) {
      ++stats_.rxBad;
    } else {
      // The buffer is the driver's until it is posted again below; the receiver copies the frame
      // (lwIP into its own pbuf) before this call returns.
      deliver(std::span<const uint8_t>(buf + kNetHeaderBytes, u->len - kNetHeaderBytes));
      ++stats_.rx;
      ++delivered;
    }
    Segment s{rx.buffers->iova() + static_cast<uint64_t>(slot) * kBufferBytes, static_cast<uint32_t>(kBufferBytes), true};
    auto id = rx.queue->add(std::span<const Segment>(&s, 1));
    if (id) rx.bufferOfId[*id] = slot;
    reposted = true;
  }
  if (reposted) {
    // The device hears of new buffers only when there are some (and only if it asked to).
    rx.queue->publish();
    kick(rx);
  }
  reclaimTx();
  return delivered;
}

}  // namespace capnet::virtio

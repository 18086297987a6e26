// A virtio 1.x split virtqueue, driver side (virtio spec 1.1 §2.6). Pure memory logic over a ring
// area that the device also sees (through the IOMMU, at `iova`), so it is tested on the host
// against an in-memory device model.
//
// Nothing the device writes is trusted: every used-ring entry is read once into a local and
// checked (the index may advance by at most the number of buffers outstanding, the id must name a
// chain the driver posted and has not had back, the length must fit the chain's writable space).
// The first violation marks the queue broken; a broken queue hands out nothing and accepts nothing.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace capnet::virtio {

struct Segment {
  uint64_t iova = 0;
  uint32_t len = 0;
  bool deviceWritable = false;
};

struct Used {
  uint16_t id = 0;     // the head descriptor of the chain, as add() returned it.
  uint32_t len = 0;    // bytes the device wrote into the chain's writable segments.
};

class SplitQueue {
 public:
  static constexpr uint16_t kDescNext = 1;
  static constexpr uint16_t kDescWrite = 2;
  static constexpr uint16_t kUsedNoNotify = 1;
  static constexpr uint16_t kAvailNoInterrupt = 1;

  // Bytes of ring memory a queue of `size` entries needs (descriptor table, avail and used rings,
  // each aligned as the spec requires). `size` must be a power of two, 1..32768.
  static size_t bytesNeeded(uint16_t size);
  static bool validSize(uint16_t size);

  // `ring` is the driver's view of the ring memory (at least bytesNeeded(size), 16-byte aligned,
  // zeroed); `iova` is the device's address for its first byte.
  SplitQueue(uint16_t size, std::span<uint8_t> ring, uint64_t iova);

  uint16_t size() const { return size_; }
  uint64_t descIova() const { return iova_; }
  uint64_t availIova() const { return iova_ + availOffset_; }
  uint64_t usedIova() const { return iova_ + usedOffset_; }

  // Posts one chain; returns its head id, or nullopt when the ring lacks free descriptors (or the
  // queue is broken). The chain becomes visible to the device at the next publish().
  std::optional<uint16_t> add(std::span<const Segment> chain);
  // Makes every added chain visible to the device (release ordering on the avail index).
  void publish();
  // Whether the device asked to be notified (it may suppress notifications: VIRTQ_USED_F_NO_NOTIFY).
  bool needsKick() const;
  // Asks the device not to interrupt for this queue (VIRTQ_AVAIL_F_NO_INTERRUPT), or to again.
  void setInterrupts(bool enabled);

  // The next chain the device returned, validated; nullopt when none is pending or when the
  // device broke the protocol (then broken() says why).
  std::optional<Used> nextUsed();

  uint16_t freeDescriptors() const { return freeCount_; }
  uint16_t outstanding() const { return outstanding_; }
  bool broken() const { return !brokenReason_.empty(); }
  const std::string& brokenReason() const { return brokenReason_; }

 private:
  // SAFETY: every accessor below stays inside ring_ (offsets computed from size_ at construction,
  // indexes reduced modulo size_). The device writes the same memory concurrently: each field is
  // copied once into a local (aligned 16/32/64-bit accesses, single loads and stores), and the
  // ordering the spec requires comes from explicit fences in publish(), needsKick() and nextUsed().
  uint16_t load16(size_t off) const;
  uint32_t load32(size_t off) const;
  void store16(size_t off, uint16_t v);
  void store32(size_t off, uint32_t v);
  void store64(size_t off, uint64_t v);
  void breakQueue(std::string why);

  uint16_t size_;
  std::span<uint8_t> ring_;
  uint64_t iova_;
  size_t availOffset_ = 0;
  size_t usedOffset_ = 0;

  uint16_t freeHead_ = 0;
  uint16_t freeCount_ = 0;
  uint16_t availIdx_ = 0;        // next avail slot (free-running).
  uint16_t publishedIdx_ = 0;    // what the device has been shown.
  uint16_t lastUsedIdx_ = 0;     // next used slot to consume (free-running).
  uint16_t outstanding_ = 0;

  struct Chain {
    bool outstanding = false;
    uint16_t length = 0;          // descriptors in the chain.
    uint32_t writable = 0;        // total device-writable bytes.
  };
  std::vector<Chain> chains_;     // by head id.
  std::vector<uint16_t> next_;    // driver-private free list / chain links (never read back from the device).
  std::string brokenReason_;
};

}  // namespace capnet::virtio

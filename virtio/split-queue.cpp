#include "virtio/split-queue.h"

#include <cstring>

namespace capnet::virtio {
namespace {

constexpr size_t align(size_t v, size_t a) { return (v + a - 1) & ~(a - 1); }

// Layout (virtio 1.1 §2.6): descriptors 16 B each (align 16), avail ring flags+idx+ring[N]+used_event
// (align 2), used ring flags+idx+ring[N]{id,len}+avail_event (align 4).
constexpr size_t descBytes(uint16_t n) { return 16u * n; }
constexpr size_t availBytes(uint16_t n) { return 6u + 2u * n; }
constexpr size_t usedBytes(uint16_t n) { return 6u + 8u * n; }

}  // namespace

bool SplitQueue::validSize(uint16_t size) { return size != 0 && size <= 32768 && (size & (size - 1)) == 0; }

size_t SplitQueue::bytesNeeded(uint16_t size) {
  size_t avail = descBytes(size);
  size_t used = align(avail + availBytes(size), 4);
  return used + usedBytes(size);
}

SplitQueue::SplitQueue(uint16_t size, std::span<uint8_t> ring, uint64_t iova)
    : size_(size), ring_(ring), iova_(iova), chains_(size), next_(size) {
  if (!validSize(size)) {
    brokenReason_ = "queue size " + std::to_string(size) + " is not a power of two in 1..32768";
    return;
  }
  if (ring.size() < bytesNeeded(size) || (reinterpret_cast<uintptr_t>(ring.data()) & 15) != 0 || (iova & 15) != 0) {
    brokenReason_ = "ring memory too small or misaligned";
    return;
  }
  availOffset_ = descBytes(size);
  usedOffset_ = align(availOffset_ + availBytes(size), 4);
  for (uint16_t i = 0; i < size; ++i) next_[i] = static_cast<uint16_t>(i + 1);
  freeHead_ = 0;
  freeCount_ = size;
}

uint16_t SplitQueue::load16(size_t off) const {
  uint16_t v;
  std::memcpy(&v, ring_.data() + off, sizeof(v));
  return v;
}
uint32_t SplitQueue::load32(size_t off) const {
  uint32_t v;
  std::memcpy(&v, ring_.data() + off, sizeof(v));
  return v;
}
void SplitQueue::store16(size_t off, uint16_t v) { std::memcpy(ring_.data() + off, &v, sizeof(v)); }
void SplitQueue::store32(size_t off, uint32_t v) { std::memcpy(ring_.data() + off, &v, sizeof(v)); }
void SplitQueue::store64(size_t off, uint64_t v) { std::memcpy(ring_.data() + off, &v, sizeof(v)); }

void SplitQueue::breakQueue(std::string why) {
  if (brokenReason_.empty()) brokenReason_ = std::move(why);
}

std::optional<uint16_t> SplitQueue::add(std::span<const Segment> chain) {
  if (broken() || chain.empty() || chain.size() > freeCount_) return std::nullopt;
  uint16_t head = freeHead_;
  uint16_t id = head;
  uint32_t writable = 0;
  for (size_t i = 0; i < chain.size(); ++i) {
    const Segment& s = chain[i];
    size_t d = 16u * id;
    uint16_t flags = s.deviceWritable ? kDescWrite : 0;
    uint16_t following = next_[id];
    if (i + 1 < chain.size()) flags |= kDescNext;
    store64(d, s.iova);
    store32(d + 8, s.len);
    store16(d + 12, flags);
    store16(d + 14, following);
    if (s.deviceWritable) writable += s.len;
    if (i + 1 < chain.size()) id = following;
    else freeHead_ = following;
  }
  freeCount_ = static_cast<uint16_t>(freeCount_ - chain.size());
  chains_[head] = Chain{true, static_cast<uint16_t>(chain.size()), writable};
  ++outstanding_;
  store16(availOffset_ + 4 + 2u * (availIdx_ % size_), head);
  ++availIdx_;
  return head;
}

void SplitQueue::publish() {
  if (broken() || availIdx_ == publishedIdx_) return;
  // The descriptors and ring entries must be visible before the index that publishes them.
  std::atomic_thread_fence(std::memory_order_release);
  store16(availOffset_ + 2, availIdx_);
  publishedIdx_ = availIdx_;
}

bool SplitQueue::needsKick() const {
  if (broken()) return false;
  // Order our index store before reading the device's flag (a full fence, per the spec).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return (load16(usedOffset_) & kUsedNoNotify) == 0;
}

void SplitQueue::setInterrupts(bool enabled) {
  if (broken()) return;
  store16(availOffset_, enabled ? 0 : kAvailNoInterrupt);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

std::optional<Used> SplitQueue::nextUsed() {
  if (broken()) return std::nullopt;
  const uint16_t deviceIdx = load16(usedOffset_ + 2);   // read once.
  const uint16_t pending = static_cast<uint16_t>(deviceIdx - lastUsedIdx_);
  if (pending == 0) return std::nullopt;
  if (pending > outstanding_) {
    breakQueue("used index advanced by " + std::to_string(pending) + " with only " +
               std::to_string(outstanding_) + " buffers outstanding");
    return std::nullopt;
  }
  // The entries the index covers were written before it (acquire pairs with the device's release).
  std::atomic_thread_fence(std::memory_order_acquire);
  const size_t entry = usedOffset_ + 4 + 8u * (lastUsedIdx_ % size_);
  const uint32_t rawId = load32(entry);       // read once each: no double fetch.
  const uint32_t len = load32(entry + 4);
  if (rawId >= size_) {
    breakQueue("used id " + std::to_string(rawId) + " out of range (queue size " + std::to_string(size_) + ")");
    return std::nullopt;
  }
  const uint16_t id = static_cast<uint16_t>(rawId);
  Chain& c = chains_[id];
  if (!c.outstanding) {
    breakQueue("used id " + std::to_string(id) + " was not outstanding (double completion or forged id)");
    return std::nullopt;
  }
  if (len > c.writable) {
    breakQueue("used length " + std::to_string(len) + " exceeds the chain's " + std::to_string(c.writable) +
               " writable bytes");
    return std::nullopt;
  }
  ++lastUsedIdx_;
  // Return the chain's descriptors to the free list, following our own links (never the device's).
  uint16_t last = id;
  for (uint16_t i = 1; i < c.length; ++i) last = next_[last];
  next_[last] = freeHead_;
  freeHead_ = id;
  freeCount_ = static_cast<uint16_t>(freeCount_ + c.length);
  c.outstanding = false;
  --outstanding_;
  return Used{id, len};
}

}  // namespace capnet::virtio

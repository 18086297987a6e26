#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "virtio/split-queue.h"

using namespace capnet::virtio;

namespace {

constexpr uint64_t kRingIova = 0x10000;
constexpr uint64_t kDataIova = 0x80000;

// Ring memory plus a data area, both addressed by IOVA as the device would see them.
struct Memory {
  std::vector<uint8_t> ringStore, data;
  std::span<uint8_t> ring;
  explicit Memory(uint16_t size) : ringStore(SplitQueue::bytesNeeded(size) + 16), data(64 * 1024) {
    auto base = reinterpret_cast<uintptr_t>(ringStore.data());
    size_t pad = (16 - (base & 15)) & 15;
    ring = std::span<uint8_t>(ringStore.data() + pad, SplitQueue::bytesNeeded(size));
  }
};

// The device side of the protocol, operating on the same memory as the driver.
struct FakeDevice {
  Memory& m;
  uint16_t size;
  uint16_t lastAvail = 0;
  uint16_t usedIdx = 0;
  size_t availOff, usedOff;
  FakeDevice(Memory& mem, uint16_t n) : m(mem), size(n) {
    availOff = 16u * n;
    usedOff = (availOff + 6 + 2u * n + 3) & ~size_t(3);
  }
  uint16_t rd16(size_t off) const {
    uint16_t v;
    std::memcpy(&v, m.ring.data() + off, 2);
    return v;
  }
  void wr16(size_t off, uint16_t v) { std::memcpy(m.ring.data() + off, &v, 2); }
  void wr32(size_t off, uint32_t v) { std::memcpy(m.ring.data() + off, &v, 4); }

  // Takes every newly available chain, fills its writable segments, and returns it as used.
  int serviceAll(uint8_t fill = 0xab) {
    int n = 0;
    uint16_t availIdx = rd16(availOff + 2);
    while (lastAvail != availIdx) {
      uint16_t head = rd16(availOff + 4 + 2u * (lastAvail % size));
      uint32_t written = 0;
      uint16_t d = head;
      for (int guard = 0; guard < size; ++guard) {
        uint64_t addr;
        uint32_t len;
        uint16_t flags, next;
        std::memcpy(&addr, m.ring.data() + 16u * d, 8);
        std::memcpy(&len, m.ring.data() + 16u * d + 8, 4);
        std::memcpy(&flags, m.ring.data() + 16u * d + 12, 2);
        std::memcpy(&next, m.ring.data() + 16u * d + 14, 2);
        if (flags & SplitQueue::kDescWrite) {
          std::memset(m.data.data() + (addr - kDataIova), fill, len);
          written += len;
        }
        if (!(flags & SplitQueue::kDescNext)) break;
        d = next;
      }
      complete(head, written);
      ++lastAvail;
      ++n;
    }
    return n;
  }
  void complete(uint32_t id, uint32_t len) {
    size_t e = usedOff + 4 + 8u * (usedIdx % size);
    wr32(e, id);
    wr32(e + 4, len);
    ++usedIdx;
    wr16(usedOff + 2, usedIdx);
  }
};

Segment seg(uint64_t off, uint32_t len, bool writable) { return Segment{kDataIova + off, len, writable}; }

}  // namespace

TEST_CASE("buffers round-trip through the device and the indexes wrap past 65535") {
  constexpr uint16_t kSize = 8;
  Memory m(kSize);
  SplitQueue q(kSize, m.ring, kRingIova);
  FakeDevice dev(m, kSize);
  REQUIRE_FALSE(q.broken());
  for (int round = 0; round < 70000; ++round) {
    Segment s = seg(static_cast<uint64_t>(round % kSize) * 64, 64, true);
    auto id = q.add(std::span<const Segment>(&s, 1));
    REQUIRE(id.has_value());
    q.publish();
    REQUIRE(dev.serviceAll() == 1);
    auto used = q.nextUsed();
    REQUIRE(used.has_value());
    CHECK(used->id == *id);
    CHECK(used->len == 64);
    CHECK_FALSE(q.nextUsed().has_value());
  }
  CHECK(q.freeDescriptors() == kSize);
  CHECK(q.outstanding() == 0);
  CHECK_FALSE(q.broken());
}

TEST_CASE("descriptor chains: the device sees the links and may write up to the writable total") {
  constexpr uint16_t kSize = 8;
  Memory m(kSize);
  SplitQueue q(kSize, m.ring, kRingIova);
  FakeDevice dev(m, kSize);
  Segment chain[] = {seg(0, 12, false), seg(100, 200, true), seg(400, 300, true)};
  auto id = q.add(chain);
  REQUIRE(id.has_value());
  CHECK(q.freeDescriptors() == kSize - 3);
  q.publish();
  REQUIRE(dev.serviceAll(0x5a) == 1);
  CHECK(m.data[100] == 0x5a);
  CHECK(m.data[699] == 0x5a);
  CHECK(m.data[700] == 0);
  auto used = q.nextUsed();
  REQUIRE(used.has_value());
  CHECK(used->len == 500);
  CHECK(q.freeDescriptors() == kSize);
}

TEST_CASE("a full ring refuses more buffers cleanly and accepts them again after completions") {
  constexpr uint16_t kSize = 4;
  Memory m(kSize);
  SplitQueue q(kSize, m.ring, kRingIova);
  FakeDevice dev(m, kSize);
  Segment s = seg(0, 16, true);
  for (int i = 0; i < kSize; ++i) REQUIRE(q.add(std::span<const Segment>(&s, 1)).has_value());
  CHECK_FALSE(q.add(std::span<const Segment>(&s, 1)).has_value());
  Segment two[] = {seg(0, 8, false), seg(8, 8, true)};
  CHECK_FALSE(q.add(two).has_value());
  q.publish();
  CHECK(dev.serviceAll() == kSize);
  CHECK(q.nextUsed().has_value());
  CHECK(q.add(std::span<const Segment>(&s, 1)).has_value());
  CHECK_FALSE(q.broken());
}

TEST_CASE("a used id out of range breaks the queue, which then hands out and accepts nothing") {
  constexpr uint16_t kSize = 8;
  Memory m(kSize);
  SplitQueue q(kSize, m.ring, kRingIova);
  FakeDevice dev(m, kSize);
  Segment s = seg(0, 16, true);
  REQUIRE(q.add(std::span<const Segment>(&s, 1)));
  q.publish();
  dev.complete(kSize + 3, 16);
  CHECK_FALSE(q.nextUsed().has_value());
  CHECK(q.broken());
  CHECK(q.brokenReason() == "used id 11 out of range (queue size 8)");
  CHECK_FALSE(q.add(std::span<const Segment>(&s, 1)).has_value());
}

TEST_CASE("a double completion (id not outstanding) is refused") {
  constexpr uint16_t kSize = 8;
  Memory m(kSize);
  SplitQueue q(kSize, m.ring, kRingIova);
  FakeDevice dev(m, kSize);
  Segment s = seg(0, 16, true);
  auto a = q.add(std::span<const Segment>(&s, 1));
  auto b = q.add(std::span<const Segment>(&s, 1));
  REQUIRE((a && b));
  q.publish();
  dev.complete(*a, 16);
  dev.complete(*a, 16);
  CHECK(q.nextUsed().has_value());
  CHECK_FALSE(q.nextUsed().has_value());
  CHECK(q.brokenReason() == "used id 0 was not outstanding (double completion or forged id)");
}

TEST_CASE("a used length beyond the writable space is refused") {
  constexpr uint16_t kSize = 8;
  Memory m(kSize);
  SplitQueue q(kSize, m.ring, kRingIova);
  FakeDevice dev(m, kSize);
  Segment tx = seg(0, 100, false);   // device-readable only: the device may write 0 bytes.
  auto id = q.add(std::span<const Segment>(&tx, 1));
  q.publish();
  dev.complete(*id, 1);
  CHECK_FALSE(q.nextUsed().has_value());
  CHECK(q.brokenReason() == "used length 1 exceeds the chain's 0 writable bytes");
}

TEST_CASE("a used index that jumps past the outstanding buffers is refused") {
  constexpr uint16_t kSize = 8;
  Memory m(kSize);
  SplitQueue q(kSize, m.ring, kRingIova);
  FakeDevice dev(m, kSize);
  Segment s = seg(0, 16, true);
  REQUIRE(q.add(std::span<const Segment>(&s, 1)));
  q.publish();
  dev.wr16(dev.usedOff + 2, 5);
  CHECK_FALSE(q.nextUsed().has_value());
  CHECK(q.brokenReason() == "used index advanced by 5 with only 1 buffers outstanding");
}

TEST_CASE("the driver kicks unless the device suppresses notifications") {
  constexpr uint16_t kSize = 8;
  Memory m(kSize);
  SplitQueue q(kSize, m.ring, kRingIova);
  FakeDevice dev(m, kSize);
  CHECK(q.needsKick());
  dev.wr16(dev.usedOff, SplitQueue::kUsedNoNotify);
  CHECK_FALSE(q.needsKick());
}

TEST_CASE("invalid sizes and misaligned ring memory are refused") {
  Memory m(8);
  CHECK(SplitQueue(6, m.ring, kRingIova).broken());
  CHECK(SplitQueue(0, m.ring, kRingIova).broken());
  CHECK(SplitQueue(8, m.ring.subspan(1), kRingIova).broken());
  CHECK(SplitQueue(16, m.ring, kRingIova).broken());   // too small for 16 entries.
}

// A hostile virtio device against the driver's split virtqueue (virtio/split-queue.cpp): the
// device owns the used ring (and can scribble anywhere in the shared ring memory), the driver posts
// chains and consumes completions through SplitQueue::nextUsed() exactly as VirtioNet's receive()
// and reclaimTx() do. No VFIO: the ring is plain memory, as in virtio/tests/split-queue-test.cpp.
//
// Input: byte 0 picks the queue size (1 << (b % 9): 1..256); then a program of 1-byte opcodes,
// each followed by its operands (missing operand bytes read as 0):
//   0 add:      n (1..4 segments), then per segment: len (u16), writable (bit 0) -> add() + publish()
//   1 complete: id (u32), len (u32), step (u8)  -> the device writes the next used entry and
//               advances the used index by `step` (0 = leave it)
//   2 index:    idx (u16)                       -> the device sets the used index outright
//   3 drain:    max (u8)                        -> nextUsed() until nullopt or `max` entries
//   4 scribble: offset (u16), value (u16)       -> the device writes anywhere in ring memory
//   5 flags:    value (u16)                     -> used flags; then needsKick(), setInterrupts()
// The driver's promises are checked after every completion: an id it posted and has not had back,
// a length within that chain's writable bytes, descriptor counts that add up. A broken promise
// traps (a driver bug: it would hand a device-chosen buffer or length to netd).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "virtio/split-queue.h"

using capnet::virtio::Segment;
using capnet::virtio::SplitQueue;

namespace {

class Input {
 public:
  Input(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  bool done() const { return i_ >= n_; }
  uint8_t u8() { return i_ < n_ ? d_[i_++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  uint32_t u32() { return static_cast<uint32_t>(u16()) | (static_cast<uint32_t>(u16()) << 16); }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_ = 0;
};

[[noreturn]] void violated() { __builtin_trap(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  const uint16_t qsize = static_cast<uint16_t>(1u << (in.u8() % 9));
  const size_t bytes = SplitQueue::bytesNeeded(qsize);
  std::vector<uint8_t> store(bytes + 16, 0);
  auto base = reinterpret_cast<uintptr_t>(store.data());
  uint8_t* ring = store.data() + ((16 - (base & 15)) & 15);
  SplitQueue q(qsize, std::span<uint8_t>(ring, bytes), 0x10000);

  // The device's view of the layout (virtio 1.1 §2.6), as a device model computes it.
  const size_t usedOff = (16u * qsize + 6 + 2u * qsize + 3) & ~size_t(3);
  uint16_t deviceUsedIdx = 0;
  // The driver-side bookkeeping the harness keeps to check the driver's promises.
  struct Posted {
    bool out = false;
    uint32_t writable = 0;
    uint16_t length = 0;
  };
  std::vector<Posted> posted(qsize);
  size_t inFlightDescs = 0;

  auto wr16 = [&](size_t off, uint16_t v) { std::memcpy(ring + off, &v, 2); };
  auto wr32 = [&](size_t off, uint32_t v) { std::memcpy(ring + off, &v, 4); };

  for (int steps = 0; !in.done() && steps < 4096; ++steps) {
    switch (in.u8() % 6) {
      case 0: {
        Segment segs[4];
        size_t n = 1 + in.u8() % 4;
        uint32_t writable = 0;
        for (size_t i = 0; i < n; ++i) {
          segs[i].len = in.u16();
          segs[i].deviceWritable = (in.u8() & 1) != 0;
          segs[i].iova = 0x80000 + 0x1000 * i;
          if (segs[i].deviceWritable) writable += segs[i].len;
        }
        auto id = q.add(std::span<const Segment>(segs, n));
        if (id) {
          if (*id >= qsize || posted[*id].out) violated();   // handed out a head still in flight
          posted[*id] = Posted{true, writable, static_cast<uint16_t>(n)};
          inFlightDescs += n;
        }
        q.publish();
        break;
      }
      case 1: {
        uint32_t id = in.u32(), len = in.u32();
        uint8_t step = in.u8();
        size_t e = usedOff + 4 + 8u * (deviceUsedIdx % qsize);
        wr32(e, id);
        wr32(e + 4, len);
        deviceUsedIdx = static_cast<uint16_t>(deviceUsedIdx + step);
        wr16(usedOff + 2, deviceUsedIdx);
        break;
      }
      case 2:
        deviceUsedIdx = in.u16();
        wr16(usedOff + 2, deviceUsedIdx);
        break;
      case 3: {
        unsigned max = in.u8();
        for (unsigned k = 0; k < max; ++k) {
          auto u = q.nextUsed();
          if (!u) break;
          if (u->id >= qsize || !posted[u->id].out) violated();   // a chain the driver did not post
          if (u->len > posted[u->id].writable) violated();        // more than the device may write
          posted[u->id].out = false;
          inFlightDescs -= posted[u->id].length;
        }
        break;
      }
      case 4: {
        uint16_t off = in.u16(), v = in.u16();
        size_t o = off % (bytes - 1);
        wr16(o, v);
        break;
      }
      case 5:
        wr16(usedOff, in.u16());
        (void)q.needsKick();
        q.setInterrupts((in.u8() & 1) != 0);
        break;
    }
    if (!q.broken() && q.freeDescriptors() + inFlightDescs != qsize) violated();   // leaked or doubled descriptors
  }
  return 0;
}

#include <doctest/doctest.h>

#include <vector>

#include "virtio/pci-caps.h"

using namespace capnet::virtio;

namespace {

struct Config {
  std::vector<uint8_t> b = std::vector<uint8_t>(256, 0);
  uint8_t last = 0;
  Config() { b[0x06] = 0x10; }
  void le32(size_t off, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
  }
  void cap(uint8_t at, uint8_t type, uint8_t bar, uint32_t offset, uint32_t length, uint8_t len = 16) {
    if (last == 0) {
      b[0x34] = at;
    } else {
      b[last + 1] = at;
    }
    b[at] = 0x09;
    b[at + 1] = 0;
    b[at + 2] = len;
    b[at + 3] = type;
    b[at + 4] = bar;
    le32(at + 8, offset);
    le32(at + 12, length);
    last = at;
  }
  static Config modern() {
    Config c;
    c.cap(0x40, 1, 4, 0x0000, 0x1000);
    c.cap(0x54, 3, 4, 0x1000, 0x1000);
    c.cap(0x64, 4, 4, 0x2000, 0x1000);
    c.cap(0x74, 2, 4, 0x3000, 0x1000, 20);
    c.le32(0x74 + 16, 4);
    return c;
  }
};

const std::array<uint64_t, 6> kBars = {0, 0x1000, 0, 0, 0x4000, 0};

}  // namespace

TEST_CASE("a modern virtio-net configuration space yields all four windows") {
  auto c = Config::modern();
  auto r = parseVirtioCaps(c.b, kBars);
  REQUIRE(r.ok());
  CHECK(r->common.bar == 4);
  CHECK(r->isr.offset == 0x1000);
  CHECK(r->device.offset == 0x2000);
  CHECK(r->notify.offset == 0x3000);
  CHECK(r->notifyOffMultiplier == 4);
}

TEST_CASE("windows outside their BAR, absent BARs, loops and truncation are refused") {
  {
    auto c = Config::modern();
    c.le32(0x64 + 8, 0x3800);   // device cfg [0x3800, +0x1000) beyond the 0x4000 BAR
    auto r = parseVirtioCaps(c.b, kBars);
    REQUIRE_FALSE(r.ok());
    CHECK(r.message() == "virtio PCI capabilities: window [14336, +4096) exceeds BAR 4 of 16384 bytes");
  }
  {
    auto c = Config::modern();
    c.b[0x40 + 4] = 2;   // BAR 2 is absent
    CHECK(parseVirtioCaps(c.b, kBars).message() == "virtio PCI capabilities: capability names absent BAR 2");
  }
  {
    auto c = Config::modern();
    c.le32(0x40 + 8, 0xfffffff0);   // offset + length overflows 32 bits
    CHECK_FALSE(parseVirtioCaps(c.b, kBars).ok());
  }
  {
    auto c = Config::modern();
    c.b[0x74 + 1] = 0x40;   // the list loops back to the first capability
    CHECK(parseVirtioCaps(c.b, kBars).message() == "virtio PCI capabilities: capability list loops at offset 64");
  }
  {
    auto c = Config::modern();
    std::vector<uint8_t> shortCfg(c.b.begin(), c.b.begin() + 0x70);
    CHECK_FALSE(parseVirtioCaps(shortCfg, kBars).ok());
  }
  {
    Config legacy;   // no vendor capabilities at all
    legacy.b[0x06] = 0;
    CHECK(parseVirtioCaps(legacy.b, kBars).message() == "virtio PCI capabilities: no capability list (status bit 4 clear)");
  }
  {
    auto c = Config::modern();
    c.b[0x74 + 1] = 0;
    c.b[0x64 + 1] = 0;   // drop the notify capability
    CHECK(parseVirtioCaps(c.b, kBars).message() == "virtio PCI capabilities: no notify capability");
  }
}

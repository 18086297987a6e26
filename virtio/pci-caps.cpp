#include "virtio/pci-caps.h"

#include <set>

namespace capnet::virtio {
namespace {

constexpr uint8_t kCapVendor = 0x09;
constexpr uint8_t kCommonCfg = 1, kNotifyCfg = 2, kIsrCfg = 3, kDeviceCfg = 4;
constexpr uint32_t kCommonCfgMinLength = 0x38;

uint32_t le32(std::span<const uint8_t> b, size_t off) {
  return static_cast<uint32_t>(b[off]) | (static_cast<uint32_t>(b[off + 1]) << 8) |
         (static_cast<uint32_t>(b[off + 2]) << 16) | (static_cast<uint32_t>(b[off + 3]) << 24);
}

}  // namespace

Result<VirtioPciCaps, CapsError> parseVirtioCaps(std::span<const uint8_t> config, const std::array<uint64_t, 6>& barSizes) {
  auto bad = [](std::string why) { return fail(CapsError::kInvalid, "virtio PCI capabilities: " + why); };
  if (config.size() < 0x40) return bad("config space shorter than 64 bytes");
  if (!(config[0x06] & 0x10)) return bad("no capability list (status bit 4 clear)");
  VirtioPciCaps caps;
  bool have[5] = {};
  std::set<uint8_t> visited;
  uint8_t ptr = config[0x34] & 0xfc;
  while (ptr != 0) {
    if (!visited.insert(ptr).second) return bad("capability list loops at offset " + std::to_string(ptr));
    if (ptr < 0x40 || static_cast<size_t>(ptr) + 2 > config.size()) {
      return bad("capability pointer " + std::to_string(ptr) + " outside the config space");
    }
    uint8_t id = config[ptr];
    uint8_t next = config[ptr + 1] & 0xfc;
    if (id == kCapVendor) {
      if (static_cast<size_t>(ptr) + 16 > config.size()) return bad("truncated vendor capability");
      uint8_t capLen = config[ptr + 2];
      uint8_t type = config[ptr + 3];
      CapWindow w{config[ptr + 4], le32(config, ptr + 8), le32(config, ptr + 12)};
      if (type >= kCommonCfg && type <= kDeviceCfg && !have[type]) {
        if (capLen < 16) return bad("vendor capability shorter than 16 bytes");
        if (w.bar > 5 || barSizes[w.bar] == 0) return bad("capability names absent BAR " + std::to_string(w.bar));
        uint64_t end = static_cast<uint64_t>(w.offset) + w.length;
        if (w.length == 0 || end > barSizes[w.bar]) {
          return bad("window [" + std::to_string(w.offset) + ", +" + std::to_string(w.length) + ") exceeds BAR " +
                     std::to_string(w.bar) + " of " + std::to_string(barSizes[w.bar]) + " bytes");
        }
        switch (type) {
          case kCommonCfg:
            if (w.length < kCommonCfgMinLength) return bad("common configuration window too short");
            caps.common = w;
            break;
          case kNotifyCfg:
            if (capLen < 20 || static_cast<size_t>(ptr) + 20 > config.size()) return bad("notify capability too short");
            caps.notify = w;
            caps.notifyOffMultiplier = le32(config, ptr + 16);
            break;
          case kIsrCfg:
            caps.isr = w;
            break;
          case kDeviceCfg:
            caps.device = w;
            break;
        }
        have[type] = true;
      }
    }
    ptr = next;
  }
  if (!have[kCommonCfg]) return bad("no common configuration capability (not a modern virtio device)");
  if (!have[kNotifyCfg]) return bad("no notify capability");
  if (!have[kIsrCfg]) return bad("no ISR capability");
  if (!have[kDeviceCfg]) return bad("no device configuration capability");
  return caps;
}

}  // namespace capnet::virtio

// Parsing the virtio 1.x vendor capabilities out of a PCI configuration space (virtio 1.1 §4.1.4).
// A pure function over bytes the device supplied: every pointer, offset and length is checked
// against the config space and against the sizes of the BARs it names.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "common/result.h"

namespace capnet::virtio {

struct CapWindow {
  uint8_t bar = 0;
  uint32_t offset = 0;
  uint32_t length = 0;
};

struct VirtioPciCaps {
  CapWindow common, notify, isr, device;
  uint32_t notifyOffMultiplier = 0;
};

enum class CapsError : uint8_t { kInvalid = 0 };

// `barSizes[i]` is the size of BAR i (0 when absent). Requires the common, notify, ISR and
// device-specific windows, each inside its BAR, the common window at least 0x38 bytes.
Result<VirtioPciCaps, CapsError> parseVirtioCaps(std::span<const uint8_t> config, const std::array<uint64_t, 6>& barSizes);

}  // namespace capnet::virtio

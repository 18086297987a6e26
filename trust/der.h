// A bounded DER reader for the few certificate fields capnet reads itself (trust/spki.h,
// trust/x509-ext.h): one element at a time, every length checked against what is left.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace capnet::der {

struct Element {
  uint8_t tag = 0;
  std::span<const uint8_t> whole;      // tag, length and contents
  std::span<const uint8_t> contents;
};

// The element at the front of `in`, or nullopt when it is truncated, uses a multi-byte tag, the
// indefinite form or a length over 4 bytes (none of which DER certificates need).
inline std::optional<Element> read(std::span<const uint8_t> in) {
  if (in.size() < 2) return std::nullopt;
  Element e;
  e.tag = in[0];
  if ((e.tag & 0x1f) == 0x1f) return std::nullopt;
  size_t pos = 1;
  size_t len = in[pos++];
  if (len & 0x80) {
    size_t octets = len & 0x7f;
    if (octets == 0 || octets > 4 || in.size() - pos < octets) return std::nullopt;
    len = 0;
    for (size_t i = 0; i < octets; ++i) len = (len << 8) | in[pos++];
  }
  if (len > in.size() - pos) return std::nullopt;
  e.contents = in.subspan(pos, len);
  e.whole = in.subspan(0, pos + len);
  return e;
}

}  // namespace capnet::der

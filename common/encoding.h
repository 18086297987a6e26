// Text encodings read from config files and command lines, one implementation each: dates
// ("YYYY-MM-DD") and base64 (RFC 4648, canonical with padding: pins). Hex and base64 output come
// from KJ (kj::encodeHex, kj::encodeBase64) at the call sites.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace capnet {

// "YYYY-MM-DD" -> ms since the epoch at 00:00 UTC of that day; false for anything else (other
// lengths, signs, a day the month does not have, years before 1970).
bool parseDate(std::string_view text, int64_t& msSinceEpoch);

// Standard base64 with padding -> bytes (KJ's decoder). Refuses what does not re-encode to the same
// text: characters outside the alphabet, missing or misplaced padding, whitespace.
bool decodeBase64(std::string_view text, std::vector<uint8_t>& out);

}  // namespace capnet

// URLs fetchd accepts: http:// and https:// with an ASCII host name or IPv4 literal, an optional
// port, a path and query. Everything else is refused with the part and the reason. The fragment is
// parsed and dropped: it is never sent upstream. A pure function over bytes (fuzzable).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace capnet {

inline constexpr size_t kMaxUrlBytes = 4096;

struct Url {
  std::string scheme;   // "http" | "https"
  std::string host;     // lower-cased
  uint16_t port = 0;    // explicit or the scheme's default
  std::string target;   // path + "?" + query, at least "/"
  std::string text() const;   // normalised, without fragment
};

enum class UrlError : uint8_t { kInvalid = 0, kScheme };

Result<Url, UrlError> parseUrl(std::string_view text);

}  // namespace capnet

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

// A redirect's Location resolved as an RFC 3986 reference against the request's URL (section 5.2:
// absolute, scheme-relative "//host/...", absolute-path, query-only, or a relative path merged
// with the base's and cleared of "." and ".." segments), then parsed as above. The fragment is
// dropped. The same-origin rule is the caller's.
Result<Url, UrlError> resolveReference(const Url& base, std::string_view reference);

// RFC 3986 5.2.4.
std::string removeDotSegments(std::string_view path);

}  // namespace capnet

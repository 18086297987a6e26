// The one URL parser: fetchd's fetches and redirects, capd's scopes and `capd --explain`.
// http:// and https:// (and, for scopes, tcp:// and tls://) with an ASCII host name or an IPv4
// address, an optional port, a path and query. Whatever it accepts, the scheme, host and port are
// what the WHATWG URL Standard yields for the same input: a host whose last label is a number is
// an IPv4 address in any of the standard's number forms ("127.1", "0x7f.0.0.1", "2130706433" are
// all 127.0.0.1) or is refused, never a name; `xn--` labels must be valid punycode. Where it is
// stricter than the standard it refuses with the part and the reason: userinfo, IPv6, non-ASCII
// (IDNs), percent-encoded or unusual host characters, a trailing dot, port 0, and the forms the
// standard repairs (backslashes, missing slashes, spaces). The fragment is parsed and dropped: it
// is never sent upstream. Pure functions over bytes (fuzzed: fuzz/fuzz-url.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace capnet {

inline constexpr size_t kMaxUrlBytes = 4096;

struct Url {
  std::string scheme;   // "http" | "https" (| "tcp" | "tls" for scopes)
  std::string host;     // lower-cased
  uint16_t port = 0;    // explicit or the scheme's default
  std::string target;   // path + "?" + query, at least "/"
  std::string text() const;   // normalised, without fragment
};

enum class UrlError : uint8_t { kInvalid = 0, kScheme };

enum class UrlSchemes : uint8_t {
  kWeb,      // http, https: what fetchd fetches
  kScopes,   // also tcp:// (port required) and tls:// (443): the scopes capd grants
};

Result<Url, UrlError> parseUrl(std::string_view text, UrlSchemes schemes = UrlSchemes::kWeb);

// IPv4 in its canonical dotted-decimal form ("10.0.2.100": four decimal octets, no leading zeros),
// as configs write addresses and as parseHost normalises them. Host byte order.
bool parseIpv4Dotted(std::string_view text, uint32_t& hostOrder);
std::string formatIpv4(uint32_t hostOrder);

// A URL's host as the WHATWG host parser yields it (lower case; IPv4 addresses in dotted decimal),
// or refused with the reason.
Result<std::string, UrlError> parseHost(std::string_view host);

// A redirect's Location resolved as an RFC 3986 reference against the request's URL (section 5.2:
// absolute, scheme-relative "//host/...", absolute-path, query-only, or a relative path merged
// with the base's and cleared of "." and ".." segments), then parsed as above. The fragment is
// dropped. The same-origin rule is the caller's.
Result<Url, UrlError> resolveReference(const Url& base, std::string_view reference);

// RFC 3986 5.2.4.
std::string removeDotSegments(std::string_view path);

}  // namespace capnet

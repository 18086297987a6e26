#include "common/url.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <vector>

namespace capnet {
namespace {

Error<UrlError> bad(std::string part, std::string why) { return fail(UrlError::kInvalid, "url " + part + ": " + why); }

bool isUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool isSubDelimOrPathChar(unsigned char c) {
  return isUnreserved(c) || std::string_view("!$&'()*+,;=:@/?%").find(static_cast<char>(c)) != std::string_view::npos;
}

}  // namespace

std::string Url::text() const {
  bool defaultPort = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
  return scheme + "://" + host + (defaultPort ? "" : ":" + std::to_string(port)) + target;
}

namespace {

// WHATWG "IPv4 number parser": decimal, 0x-hex or 0-octal; nullopt on failure. Values past 2^32
// saturate (they are out of range for every position anyway).
std::optional<uint64_t> ipv4Number(std::string_view in) {
  if (in.empty()) return std::nullopt;
  unsigned radix = 10;
  if (in.size() >= 2 && in[0] == '0' && (in[1] == 'x' || in[1] == 'X')) {
    in.remove_prefix(2);
    radix = 16;
  } else if (in.size() >= 2 && in[0] == '0') {
    in.remove_prefix(1);
    radix = 8;
  }
  uint64_t v = 0;
  for (char c : in) {
    unsigned d;
    if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
    else return std::nullopt;
    if (d >= radix) return std::nullopt;
    v = std::min<uint64_t>(v * radix + d, uint64_t{1} << 40);
  }
  return v;
}

std::vector<std::string_view> splitDots(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t dot = s.find('.', start);
    out.push_back(s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) return out;
    start = dot + 1;
  }
}

// WHATWG "ends in a number checker".
bool endsInNumber(std::string_view host) {
  auto parts = splitDots(host);
  if (parts.back().empty()) {
    if (parts.size() == 1) return false;
    parts.pop_back();
  }
  std::string_view last = parts.back();
  if (!last.empty() && std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; })) return true;
  return ipv4Number(last).has_value();
}

// WHATWG "IPv4 parser": the address in dotted decimal, or nullopt (a failure).
std::optional<std::string> ipv4(std::string_view host) {
  auto parts = splitDots(host);
  if (parts.back().empty() && parts.size() > 1) parts.pop_back();
  if (parts.size() > 4) return std::nullopt;
  std::vector<uint64_t> numbers;
  for (auto p : parts) {
    auto n = ipv4Number(p);
    if (!n) return std::nullopt;
    numbers.push_back(*n);
  }
  for (size_t i = 0; i + 1 < numbers.size(); ++i) {
    if (numbers[i] > 255) return std::nullopt;
  }
  if (numbers.back() >= (uint64_t{1} << (8 * (5 - numbers.size())))) return std::nullopt;
  uint64_t address = numbers.back();
  for (size_t i = 0; i + 1 < numbers.size(); ++i) address += numbers[i] << (8 * (3 - i));
  return formatIpv4(static_cast<uint32_t>(address));
}

// RFC 3492 decoding of an "xn--" label's tail; nullopt when it is not valid punycode, decodes to
// nothing but ASCII, or to a code point that is not a Unicode scalar value.
std::optional<std::u32string> punycodeDecode(std::string_view in) {
  constexpr uint32_t kBase = 36, kTmin = 1, kTmax = 26, kSkew = 38, kDamp = 700, kMax = 0x7fffffff;
  std::u32string out;
  size_t delim = in.rfind('-');
  size_t pos = 0;
  if (delim != std::string_view::npos) {
    for (size_t j = 0; j < delim; ++j) out.push_back(static_cast<unsigned char>(in[j]));
    pos = delim + 1;
  }
  uint32_t n = 128, i = 0, bias = 72;
  auto adapt = [&](uint32_t delta, uint32_t points, bool first) {
    delta = first ? delta / kDamp : delta / 2;
    delta += delta / points;
    uint32_t k = 0;
    while (delta > ((kBase - kTmin) * kTmax) / 2) {
      delta /= kBase - kTmin;
      k += kBase;
    }
    return k + (kBase - kTmin + 1) * delta / (delta + kSkew);
  };
  bool anyEncoded = false;
  while (pos < in.size()) {
    uint32_t oldi = i, w = 1;
    for (uint32_t k = kBase;; k += kBase) {
      if (pos >= in.size()) return std::nullopt;
      char c = in[pos++];
      uint32_t digit;
      if (c >= 'a' && c <= 'z') digit = static_cast<uint32_t>(c - 'a');
      else if (c >= 'A' && c <= 'Z') digit = static_cast<uint32_t>(c - 'A');
      else if (c >= '0' && c <= '9') digit = static_cast<uint32_t>(c - '0') + 26;
      else return std::nullopt;
      if (digit > (kMax - i) / w) return std::nullopt;
      i += digit * w;
      uint32_t t = k <= bias ? kTmin : (k >= bias + kTmax ? kTmax : k - bias);
      if (digit < t) break;
      if (w > kMax / (kBase - t)) return std::nullopt;
      w *= kBase - t;
    }
    uint32_t points = static_cast<uint32_t>(out.size()) + 1;
    bias = adapt(i - oldi, points, oldi == 0);
    if (i / points > kMax - n) return std::nullopt;
    n += i / points;
    i %= points;
    if (n < 0x80 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return std::nullopt;
    out.insert(out.begin() + i, static_cast<char32_t>(n));
    ++i;
    anyEncoded = true;
  }
  if (!anyEncoded || out.empty()) return std::nullopt;
  return out;
}

Error<UrlError> badHost(std::string why) { return fail(UrlError::kInvalid, "url host: " + why); }

}  // namespace

std::string formatIpv4(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." + std::to_string((a >> 8) & 0xff) + "." +
         std::to_string(a & 0xff);
}

bool parseIpv4Dotted(std::string_view text, uint32_t& hostOrder) {
  uint32_t result = 0;
  int parts = 0;
  size_t i = 0;
  while (parts < 4) {
    if (i >= text.size() || text[i] < '0' || text[i] > '9') return false;
    uint32_t octet = 0;
    size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      octet = octet * 10 + static_cast<uint32_t>(text[i] - '0');
      if (octet > 255 || i - start >= 3) return false;
      ++i;
    }
    if (i - start > 1 && text[start] == '0') return false;   // no octal-looking octets.
    result = (result << 8) | octet;
    ++parts;
    if (parts < 4) {
      if (i >= text.size() || text[i] != '.') return false;
      ++i;
    }
  }
  if (i != text.size()) return false;
  hostOrder = result;
  return true;
}

Result<std::string, UrlError> parseHost(std::string_view host) {
  if (host.empty()) return badHost("empty");
  if (host.size() > 253) return badHost("longer than 253 bytes");
  std::string h;
  for (char c : host) {
    unsigned char uc = static_cast<unsigned char>(c);
    if (!(std::isalnum(uc) || c == '-' || c == '_' || c == '.')) return badHost(std::string("character '") + c + "' is not allowed");
    h.push_back(static_cast<char>(std::tolower(uc)));
  }
  if (endsInNumber(h)) {
    auto address = ipv4(h);
    if (!address) return badHost(h + " ends in a number but is not an IPv4 address");
    return *address;
  }
  if (h.back() == '.') return badHost("trailing dot");
  for (std::string_view label : splitDots(h)) {
    if (label.empty()) return badHost("empty label");
    if (label.size() > 63) return badHost("label longer than 63 bytes");
    if (label.substr(0, 4) == "xn--" && !punycodeDecode(label.substr(4))) {
      return badHost(std::string(label) + " is not valid punycode");
    }
  }
  return h;
}

Result<Url, UrlError> parseUrl(std::string_view text, UrlSchemes schemes) {
  if (text.size() > kMaxUrlBytes) return bad("", "longer than " + std::to_string(kMaxUrlBytes) + " bytes");
  for (unsigned char c : text) {
    if (c <= 0x20 || c == 0x7f) return bad("", "contains a space or control character");
    if (c >= 0x80) return bad("", "contains non-ASCII bytes (IDNs are not supported)");
  }
  auto sep = text.find("://");
  if (sep == std::string_view::npos) return bad("scheme", "missing (expected http:// or https://)");
  Url u;
  for (char c : text.substr(0, sep)) u.scheme.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  bool web = u.scheme == "http" || u.scheme == "https";
  bool scope = u.scheme == "tcp" || u.scheme == "tls";
  if (!web && !(scope && schemes == UrlSchemes::kScopes)) {
    return fail(UrlError::kScheme, "url scheme: \"" + u.scheme + "\" is not supported (" +
                                       (schemes == UrlSchemes::kScopes ? "http, https, tcp or tls" : "http or https only") + ")");
  }
  std::string_view rest = text.substr(sep + 3);
  // The fragment never leaves fetchd.
  if (auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) return bad("userinfo", "credentials in URLs are refused");
  if (!authority.empty() && authority.front() == '[') return bad("host", "IPv6 literals are not supported");
  std::string_view host = authority, port;
  bool hasPort = false;
  if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    hasPort = !port.empty();   // "host:" is the default port, as the standard says
  }
  if (hasPort) {
    unsigned long p = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return bad("port", "not a number");
      p = std::min<unsigned long>(p * 10 + static_cast<unsigned long>(c - '0'), 1000000);
    }
    if (p == 0 || p > 65535) return bad("port", (p > 65535 ? std::string(port) : std::to_string(p)) + " is out of range 1..65535");
    u.port = static_cast<uint16_t>(p);
  } else if (u.scheme == "tcp") {
    return bad("port", "required for tcp://");
  } else {
    u.port = (u.scheme == "https" || u.scheme == "tls") ? 443 : 80;
  }
  auto parsedHost = parseHost(host);
  if (!parsedHost.ok()) return fail(UrlError::kInvalid, parsedHost.message());
  u.host = std::move(parsedHost).value();
  for (unsigned char c : target) {
    if (!isSubDelimOrPathChar(c)) return bad("path", std::string("character '") + static_cast<char>(c) + "' must be percent-encoded");
  }
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == '%' && (i + 2 >= target.size() || !std::isxdigit(static_cast<unsigned char>(target[i + 1])) ||
                             !std::isxdigit(static_cast<unsigned char>(target[i + 2])))) {
      return bad("path", "malformed percent-encoding");
    }
  }
  u.target = target.empty() ? "/" : std::string(target);
  if (u.target.front() == '?') u.target.insert(u.target.begin(), '/');
  return u;
}

std::string removeDotSegments(std::string_view in) {
  std::string out;
  while (!in.empty()) {
    if (in.substr(0, 3) == "../") {
      in.remove_prefix(3);
    } else if (in.substr(0, 2) == "./") {
      in.remove_prefix(2);
    } else if (in.substr(0, 3) == "/./") {
      in.remove_prefix(2);
    } else if (in == "/.") {
      in = "/";
    } else if (in.substr(0, 4) == "/../" || in == "/..") {
      in = in.size() == 3 ? std::string_view("/") : in.substr(3);
      auto slash = out.rfind('/');
      out.erase(slash == std::string::npos ? 0 : slash);
    } else if (in == "." || in == "..") {
      in = {};
    } else {
      size_t start = in.front() == '/' ? 1 : 0;
      size_t next = in.find('/', start);
      if (next == std::string_view::npos) next = in.size();
      out.append(in.substr(0, next));
      in.remove_prefix(next);
    }
  }
  return out;
}

Result<Url, UrlError> resolveReference(const Url& base, std::string_view ref) {
  if (ref.size() > kMaxUrlBytes) return fail(UrlError::kInvalid, "Location: longer than 4096 bytes");
  auto hash = ref.find('#');
  if (hash != std::string_view::npos) ref = ref.substr(0, hash);
  // A scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"
  size_t colon = ref.find(':');
  bool hasScheme = colon != std::string_view::npos && colon > 0 && std::isalpha(static_cast<unsigned char>(ref[0]));
  for (size_t i = 1; hasScheme && i < colon; ++i) {
    char c = ref[i];
    hasScheme = std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  }
  if (hasScheme) {
    auto slash = ref.find('/');
    hasScheme = slash == std::string_view::npos || colon < slash;
  }
  if (hasScheme) return parseUrl(ref);
  std::string origin = base.scheme + "://" + base.host + ":" + std::to_string(base.port);
  if (ref.substr(0, 2) == "//") return parseUrl(base.scheme + ":" + std::string(ref));
  std::string basePath = base.target.substr(0, base.target.find('?'));
  std::string baseQuery = base.target.find('?') == std::string::npos ? "" : base.target.substr(base.target.find('?'));
  if (ref.empty()) return parseUrl(origin + base.target);
  if (ref.front() == '?') return parseUrl(origin + basePath + std::string(ref));
  std::string_view refPath = ref.substr(0, ref.find('?'));
  std::string refQuery = ref.find('?') == std::string_view::npos ? "" : std::string(ref.substr(ref.find('?')));
  std::string merged;
  if (!refPath.empty() && refPath.front() == '/') {
    merged = std::string(refPath);
  } else {
    merged = basePath.substr(0, basePath.rfind('/') + 1) + std::string(refPath);
  }
  std::string path = removeDotSegments(merged);
  if (path.empty() || path.front() != '/') path.insert(path.begin(), '/');
  return parseUrl(origin + path + refQuery);
}

}  // namespace capnet

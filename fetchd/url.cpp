#include "fetchd/url.h"

#include <cctype>

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

Result<Url, UrlError> parseUrl(std::string_view text) {
  if (text.size() > kMaxUrlBytes) return bad("", "longer than " + std::to_string(kMaxUrlBytes) + " bytes");
  for (unsigned char c : text) {
    if (c <= 0x20 || c == 0x7f) return bad("", "contains a space or control character");
    if (c >= 0x80) return bad("", "contains non-ASCII bytes (IDNs are not supported)");
  }
  auto sep = text.find("://");
  if (sep == std::string_view::npos) return bad("scheme", "missing (expected http:// or https://)");
  Url u;
  for (char c : text.substr(0, sep)) u.scheme.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (u.scheme != "http" && u.scheme != "https") {
    return fail(UrlError::kScheme, "url scheme: \"" + u.scheme + "\" is not supported (http or https only)");
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
  if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return bad("port", "empty");
    if (port.size() > 5) return bad("port", "out of range");
    unsigned long p = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return bad("port", "not a number");
      p = p * 10 + static_cast<unsigned long>(c - '0');
    }
    if (p == 0 || p > 65535) return bad("port", std::to_string(p) + " is out of range 1..65535");
    u.port = static_cast<uint16_t>(p);
  } else {
    u.port = u.scheme == "https" ? 443 : 80;
  }
  if (host.empty()) return bad("host", "empty");
  if (host.size() > 253) return bad("host", "longer than 253 bytes");
  size_t label = 0;
  for (char c : host) {
    unsigned char uc = static_cast<unsigned char>(c);
    if (c == '.') {
      if (label == 0) return bad("host", "empty label");
      label = 0;
      u.host.push_back('.');
      continue;
    }
    if (!(std::isalnum(uc) || c == '-' || c == '_')) return bad("host", std::string("character '") + c + "' is not allowed");
    if (++label > 63) return bad("host", "label longer than 63 bytes");
    u.host.push_back(static_cast<char>(std::tolower(uc)));
  }
  if (host.back() == '.') return bad("host", "trailing dot");
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

}  // namespace capnet

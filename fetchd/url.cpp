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

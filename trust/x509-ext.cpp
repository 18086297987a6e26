#include "trust/x509-ext.h"

#include "common/url.h"
#include "trust/der.h"

#include <algorithm>
#include <cctype>

namespace capnet {
namespace {

using der::Element;


// The elements of a constructed element's contents, in order; nullopt if any does not parse.
std::optional<std::vector<Element>> children(std::span<const uint8_t> contents, size_t max = 64) {
  std::vector<Element> out;
  while (!contents.empty()) {
    if (out.size() >= max) return std::nullopt;
    auto e = der::read(contents);
    if (!e) return std::nullopt;
    out.push_back(*e);
    contents = contents.subspan(e->whole.size());
  }
  return out;
}

std::string lower(std::span<const uint8_t> bytes) {
  std::string s(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string dottedOid(std::span<const uint8_t> oid) {
  if (oid.empty()) return "?";
  std::string out = std::to_string(oid[0] / 40) + "." + std::to_string(oid[0] % 40);
  uint64_t v = 0;
  for (size_t i = 1; i < oid.size(); ++i) {
    v = (v << 7) | (oid[i] & 0x7f);
    if (!(oid[i] & 0x80)) {
      out += "." + std::to_string(v);
      v = 0;
    }
  }
  return out;
}

bool oidIs(std::span<const uint8_t> oid, std::initializer_list<uint8_t> want) {
  return oid.size() == want.size() && std::equal(oid.begin(), oid.end(), want.begin());
}

// id-ce 2.5.29.x
constexpr uint8_t kCe0 = 0x55, kCe1 = 0x1d;
constexpr uint8_t kBasicConstraints = 19, kKeyUsage = 15, kExtKeyUsage = 37, kSubjectAltName = 17,
                  kNameConstraints = 30;

bool parseBasicConstraints(std::span<const uint8_t> value, CertExtensions& out) {
  auto seq = der::read(value);
  if (!seq || seq->tag != 0x30) return false;
  auto items = children(seq->contents, 2);
  if (!items) return false;
  out.hasBasicConstraints = true;
  for (const auto& e : *items) {
    if (e.tag == 0x01 && e.contents.size() == 1) {
      out.isCa = e.contents[0] != 0;
    } else if (e.tag == 0x02 && !e.contents.empty() && e.contents.size() <= 4 && !(e.contents[0] & 0x80)) {
      uint32_t v = 0;
      for (uint8_t b : e.contents) v = (v << 8) | b;
      out.pathLen = v;
    } else {
      return false;
    }
  }
  return true;
}

bool parseKeyUsage(std::span<const uint8_t> value, CertExtensions& out) {
  auto bits = der::read(value);
  if (!bits || bits->tag != 0x03 || bits->contents.empty() || bits->contents[0] > 7) return false;
  out.hasKeyUsage = true;
  out.keyCertSign = bits->contents.size() >= 2 && (bits->contents[1] & 0x04) != 0;   // bit 5
  return true;
}

bool parseSubtrees(std::span<const uint8_t> contents, std::vector<std::string>& dns, std::vector<std::string>& ip) {
  auto subtrees = children(contents);
  if (!subtrees) return false;
  for (const auto& st : *subtrees) {
    if (st.tag != 0x30) return false;
    auto base = der::read(st.contents);
    if (!base) return false;
    if (base->tag == 0x82) dns.push_back(lower(base->contents));   // dNSName
    if (base->tag == 0x87) {                                        // iPAddress: address and mask
      if (base->contents.size() != 8 && base->contents.size() != 32) return false;
      ip.emplace_back(reinterpret_cast<const char*>(base->contents.data()), base->contents.size());
    }
  }
  return true;
}

bool parseNameConstraints(std::span<const uint8_t> value, CertExtensions& out) {
  auto seq = der::read(value);
  if (!seq || seq->tag != 0x30) return false;
  auto items = children(seq->contents, 2);
  if (!items) return false;
  out.hasNameConstraints = true;
  for (const auto& e : *items) {
    if (e.tag == 0xa0) {
      if (!parseSubtrees(e.contents, out.permittedDns, out.permittedIp)) return false;
    } else if (e.tag == 0xa1) {
      if (!parseSubtrees(e.contents, out.excludedDns, out.excludedIp)) return false;
    } else {
      return false;
    }
  }
  return true;
}

bool parseSubjectAltName(std::span<const uint8_t> value, CertExtensions& out) {
  auto seq = der::read(value);
  if (!seq || seq->tag != 0x30) return false;
  auto names = children(seq->contents, 256);
  if (!names) return false;
  for (const auto& n : *names) {
    if (n.tag == 0x82) out.dnsNames.push_back(lower(n.contents));
    if (n.tag == 0x87) out.ipAddresses.emplace_back(reinterpret_cast<const char*>(n.contents.data()), n.contents.size());
  }
  return true;
}

}  // namespace

bool dnsWithin(std::string_view name, std::string_view constraint) {
  auto eq = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
  };
  if (constraint.empty()) return true;   // an empty dNSName constraint matches every name.
  if (constraint.front() == '.') {
    return name.size() > constraint.size() && eq(name.substr(name.size() - constraint.size()), constraint);
  }
  if (eq(name, constraint)) return true;
  return name.size() > constraint.size() + 1 && name[name.size() - constraint.size() - 1] == '.' &&
         eq(name.substr(name.size() - constraint.size()), constraint);
}

namespace {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::optional<std::string> ipv4Literal(std::string_view host) {
  uint32_t a = 0;
  if (!parseIpv4Dotted(host, a)) return std::nullopt;   // the one IPv4 parser (common/url.h)
  return std::string{static_cast<char>(a >> 24), static_cast<char>(a >> 16), static_cast<char>(a >> 8), static_cast<char>(a)};
}

bool ipWithinConstraints(const std::string& address, const CertExtensions& ca) {
  auto within = [&](const std::string& subtree) {
    size_t n = address.size();
    if (subtree.size() != 2 * n) return false;   // another address family
    for (size_t i = 0; i < n; ++i) {
      auto mask = static_cast<uint8_t>(subtree[n + i]);
      if ((static_cast<uint8_t>(address[i]) & mask) != (static_cast<uint8_t>(subtree[i]) & mask)) return false;
    }
    return true;
  };
  for (const auto& x : ca.excludedIp) {
    if (within(x)) return false;
  }
  bool familyPermitted = false, inPermitted = false;
  for (const auto& p : ca.permittedIp) {
    if (p.size() != 2 * address.size()) continue;
    familyPermitted = true;
    inPermitted = inPermitted || within(p);
  }
  return !familyPermitted || inPermitted;
}

bool hostMatches(const CertExtensions& leaf, std::string_view host) {
  if (host.empty()) return false;
  if (auto ip = ipv4Literal(host)) {
    return std::find(leaf.ipAddresses.begin(), leaf.ipAddresses.end(), *ip) != leaf.ipAddresses.end();
  }
  if (host.back() == '.') host.remove_suffix(1);   // an absolute name is the same name
  for (std::string_view pattern : leaf.dnsNames) {
    if (!pattern.empty() && pattern.back() == '.') pattern.remove_suffix(1);
    if (pattern.find('*') == std::string_view::npos) {
      if (equalsIgnoreCase(pattern, host)) return true;
      continue;
    }
    // Only "*." as the whole first label, and at least two labels after it.
    if (pattern.size() < 3 || pattern[0] != '*' || pattern[1] != '.') continue;
    std::string_view suffix = pattern.substr(1);   // ".example.com"
    if (suffix.find('*') != std::string_view::npos || std::count(suffix.begin(), suffix.end(), '.') < 2) continue;
    size_t firstDot = host.find('.');
    if (firstDot == 0 || firstDot == std::string_view::npos) continue;
    if (equalsIgnoreCase(host.substr(firstDot), suffix)) return true;
  }
  return false;
}

std::optional<CertExtensions> parseExtensions(std::span<const uint8_t> certDer) {
  auto cert = der::read(certDer);
  if (!cert || cert->tag != 0x30) return std::nullopt;
  auto tbs = der::read(cert->contents);
  if (!tbs || tbs->tag != 0x30) return std::nullopt;
  auto fields = children(tbs->contents, 16);
  if (!fields) return std::nullopt;
  CertExtensions out;
  for (const auto& f : *fields) {
    if (f.tag != 0xa3) continue;   // [3] extensions; other fields are not extensions.
    auto list = der::read(f.contents);
    if (!list || list->tag != 0x30) return std::nullopt;
    auto exts = children(list->contents, 64);
    if (!exts) return std::nullopt;
    for (const auto& ext : *exts) {
      if (ext.tag != 0x30) return std::nullopt;
      auto parts = children(ext.contents, 3);
      if (!parts || parts->size() < 2 || (*parts)[0].tag != 0x06) return std::nullopt;
      auto oid = (*parts)[0].contents;
      bool critical = false;
      const Element* value = &(*parts)[1];
      if (parts->size() == 3) {
        if ((*parts)[1].tag != 0x01 || (*parts)[1].contents.size() != 1) return std::nullopt;
        critical = (*parts)[1].contents[0] != 0;
        value = &(*parts)[2];
      }
      if (value->tag != 0x04) return std::nullopt;
      auto v = value->contents;
      if (oidIs(oid, {kCe0, kCe1, kBasicConstraints})) {
        if (!parseBasicConstraints(v, out)) return std::nullopt;
      } else if (oidIs(oid, {kCe0, kCe1, kKeyUsage})) {
        if (!parseKeyUsage(v, out)) return std::nullopt;
      } else if (oidIs(oid, {kCe0, kCe1, kNameConstraints})) {
        if (!parseNameConstraints(v, out)) return std::nullopt;
      } else if (oidIs(oid, {kCe0, kCe1, kSubjectAltName})) {
        if (!parseSubjectAltName(v, out)) return std::nullopt;
      } else if (oidIs(oid, {kCe0, kCe1, kExtKeyUsage})) {
        // Processed by the leaf checks (wolfSSL reads it).
      } else if (critical) {
        out.unhandledCritical.push_back(dottedOid(oid));
      }
    }
  }
  return out;
}

}  // namespace capnet

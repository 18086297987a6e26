// The X.509 extensions the path validation acts on (RFC 5280 section 4.2), read from the
// certificate's DER by a bounded walk: basicConstraints, keyUsage, nameConstraints (dNSName
// subtrees), and which critical extensions capnet does not process (a certificate carrying one is
// refused). A pure function over untrusted bytes, so it can be fuzzed.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace capnet {

struct CertExtensions {
  bool hasBasicConstraints = false;
  bool isCa = false;
  std::optional<uint32_t> pathLen;          // basicConstraints pathLenConstraint
  bool hasKeyUsage = false;
  bool keyCertSign = false;                 // keyUsage bit 5
  bool hasNameConstraints = false;
  std::vector<std::string> permittedDns;    // dNSName subtrees, lower case
  std::vector<std::string> excludedDns;
  std::vector<std::string> permittedIp;     // iPAddress subtrees: address then mask (8 or 32 bytes)
  std::vector<std::string> excludedIp;
  std::vector<std::string> dnsNames;        // subjectAltName dNSNames, lower case
  std::vector<std::string> ipAddresses;     // subjectAltName iPAddresses (raw 4 or 16 bytes)
  std::vector<std::string> unhandledCritical;   // dotted OIDs
};

// nullopt when the certificate's DER (or an extension capnet acts on) does not parse.
std::optional<CertExtensions> parseExtensions(std::span<const uint8_t> certDer);

// RFC 5280 4.2.1.10 for dNSName: `name` is within `constraint` when it equals it or is a
// subdomain of it (a constraint with a leading dot matches subdomains only). Case-insensitive.
bool dnsWithin(std::string_view name, std::string_view constraint);

// RFC 6125 / RFC 9110 host matching of a server certificate's subjectAltName, as curl does it: a
// DNS host matches a dNSName exactly (case-insensitive) or a wildcard `*.` that stands for exactly
// one whole left-most label of a name with at least two more labels (`*.example.com`, never `*.com`,
// `f*.example.com` or `*` alone); an IPv4 literal matches only an iPAddress entry. The common name
// is never consulted.
bool hostMatches(const CertExtensions& leaf, std::string_view host);

// The 4 bytes of a dotted-quad IPv4 host ("10.0.2.101"), or nullopt for a name.
std::optional<std::string> ipv4Literal(std::string_view host);

// RFC 5280 4.2.1.10 for iPAddress: `address` (4 or 16 bytes) is in no excluded subtree of its
// family and, when the CA permits subtrees of that family, in one of them.
bool ipWithinConstraints(const std::string& address, const CertExtensions& ca);

}  // namespace capnet

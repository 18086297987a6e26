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
  std::vector<std::string> dnsNames;        // subjectAltName dNSNames, lower case
  std::vector<std::string> unhandledCritical;   // dotted OIDs
};

// nullopt when the certificate's DER (or an extension capnet acts on) does not parse.
std::optional<CertExtensions> parseExtensions(std::span<const uint8_t> certDer);

// RFC 5280 4.2.1.10 for dNSName: `name` is within `constraint` when it equals it or is a
// subdomain of it (a constraint with a leading dot matches subdomains only). Case-insensitive.
bool dnsWithin(std::string_view name, std::string_view constraint);

}  // namespace capnet

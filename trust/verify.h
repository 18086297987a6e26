// Certificate validation policy: the one function netd (after every TLS handshake) and
// `trustctl verify` run, so they cannot disagree. wolfSSL's chain verification establishes trust;
// on top of it, today's web-PKI baseline whatever wolfSSL's defaults: a subjectAltName is required
// (the common name is never used), RSA keys of at least 2048 bits, no SHA-1 signature below the
// root, extendedKeyUsage (when present) must include serverAuth, and the certificate-time policy
// and pins of the grant. Pure over its inputs: the clock is a parameter.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "trust/trust-store.h"

namespace capnet {

enum class VerifyFailure : uint8_t {
  kUntrustedIssuer = 0,   // the zero value denies
  kExpired,
  kNotYetValid,
  kHostnameMismatch,
  kPinMismatch,
  kPolicyViolation,       // detail names the rule
  kMalformed,
};
std::string_view verifyFailureName(VerifyFailure f);

struct VerifyPolicy {
  std::string host;
  int64_t nowMs = 0;
  bool ignoreValidity = false;
  std::vector<std::array<uint8_t, 32>> pins;   // SPKI SHA-256; empty = no pinning
  int64_t pinsExpireAtMs = 0;
};

struct VerifiedPeer {
  std::array<uint8_t, 32> leafSha256{};
  std::array<uint8_t, 32> spkiSha256{};
  bool pinsSkipped = false;       // the pin set had expired
  bool datesIgnored = false;      // ignore-validity was used for a date that was out of range
};

// `chainDer`: the peer's chain, leaf first, DER.
Result<VerifiedPeer, VerifyFailure> verifyChain(const std::vector<std::string>& chainDer,
                                                const std::vector<TrustRoot>& roots, const VerifyPolicy& policy);

}  // namespace capnet

#include "trust/verify.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "trust/cert.h"
#include "trust/spki.h"
#include "trust/x509-ext.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <span>

namespace capnet {
namespace {

Error<VerifyFailure> refuse(VerifyFailure f, std::string why) { return fail(f, std::move(why)); }

}  // namespace

std::string_view verifyFailureName(VerifyFailure f) {
  switch (f) {
    case VerifyFailure::kUntrustedIssuer: return "untrusted-issuer";
    case VerifyFailure::kExpired: return "expired";
    case VerifyFailure::kNotYetValid: return "not-yet-valid";
    case VerifyFailure::kHostnameMismatch: return "hostname-mismatch";
    case VerifyFailure::kPinMismatch: return "pin-mismatch";
    case VerifyFailure::kPolicyViolation: return "policy-violation";
    case VerifyFailure::kMalformed: return "malformed";
  }
  return "untrusted-issuer";
}

namespace {

// One certificate as the path builder sees it.
struct Cert {
  std::shared_ptr<const ParsedCert> c;   // roots: shared with the store's decoded copy
  bool isRoot = false;
};

// Limits on the work a hostile chain can cause.
constexpr size_t kMaxSentCerts = 16;
constexpr size_t kMaxPathCerts = 8;     // leaf, intermediates and the root.
constexpr int kMaxSignatureChecks = 64;

struct Builder {
  std::vector<Cert>& pool;   // sent certificates after the leaf, then the roots.
  int budget = kMaxSignatureChecks;

  // Whether `parent`'s key signed `child`.
  bool signs(const Cert& parent, const Cert& child) {
    if (budget-- <= 0) return false;
    return signedBy(*child.c, *parent.c);
  }

  // Depth-first from path.back() up to a root; `path` holds indexes into `pool` (-1: the leaf).
  bool extend(const Cert& current, std::vector<int>& path) {
    if (path.size() + 1 >= kMaxPathCerts) return false;
    // Roots first: the shortest path to a trusted key wins.
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t i = 0; i < pool.size(); ++i) {
        const Cert& c = pool[i];
        if (c.isRoot != (pass == 0)) continue;
        if (std::find(path.begin(), path.end(), static_cast<int>(i)) != path.end()) continue;
        if (c.c->subjectHash != current.c->issuerHash || !signs(c, current)) continue;
        path.push_back(static_cast<int>(i));
        if (c.isRoot || extend(c, path)) return true;
        path.pop_back();
      }
    }
    return false;
  }
};

}  // namespace

Result<VerifiedPeer, VerifyFailure> verifyChain(const std::vector<std::string>& chainDer,
                                                const std::vector<TrustRoot>& roots, const VerifyPolicy& policy) {
  if (chainDer.empty()) return refuse(VerifyFailure::kMalformed, "no certificate");
  if (chainDer.size() > kMaxSentCerts) return refuse(VerifyFailure::kMalformed, "more than 16 certificates sent");
  auto span = [](const std::string& d) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(d.data()), d.size());
  };
  // A certificate wolfSSL will not load is refused; say why when capnet can tell (an unhandled
  // critical extension is a policy, not a malformed certificate).
  auto unloadable = [&](const std::string& der, const char* what) {
    auto e = parseExtensions(span(der));
    if (e && !e->unhandledCritical.empty()) {
      return refuse(VerifyFailure::kPolicyViolation,
                    std::string(what) + " carries an unhandled critical extension " + e->unhandledCritical[0]);
    }
    return refuse(VerifyFailure::kMalformed, std::string(what) + " does not parse");
  };
  auto parsedLeaf = parseCert(span(chainDer[0]));
  if (!parsedLeaf) return unloadable(chainDer[0], "the certificate");
  Cert leaf{std::make_shared<const ParsedCert>(std::move(*parsedLeaf)), false};
  std::vector<Cert> pool;
  for (size_t i = 1; i < chainDer.size(); ++i) {
    auto c = parseCert(span(chainDer[i]));
    if (!c) return unloadable(chainDer[i], "a certificate in the chain");
    pool.push_back(Cert{std::make_shared<const ParsedCert>(std::move(*c)), false});
  }
  size_t loadedRoots = 0;
  for (const auto& r : roots) {
    // Roots come decoded from the store (netd keeps them until the store changes).
    std::shared_ptr<const ParsedCert> c = r.parsed;
    if (!c) {
      auto decoded = parseCert(std::span<const uint8_t>(r.der.data(), r.der.size()));
      if (decoded) c = std::make_shared<const ParsedCert>(std::move(*decoded));
    }
    if (!c) continue;
    pool.push_back(Cert{std::move(c), true});
    ++loadedRoots;
  }
  if (loadedRoots == 0) return refuse(VerifyFailure::kUntrustedIssuer, "the trust store holds no roots");

  // 1. Trust: a path from the leaf to a trusted root through the certificates the server sent, in
  //    whatever order it sent them (unrelated extras are ignored; a sent copy of a root is only an
  //    intermediate unless it is in the store).
  Builder builder{pool};
  std::vector<int> pathIdx;
  if (!builder.extend(leaf, pathIdx)) {
    return refuse(VerifyFailure::kUntrustedIssuer, "no path from the certificate to a trusted root");
  }
  // path[0] = leaf, then the intermediates, last the root.
  std::vector<const Cert*> path{&leaf};
  for (int i : pathIdx) path.push_back(&pool[static_cast<size_t>(i)]);
  const size_t rootAt = path.size() - 1;

  VerifiedPeer peer;
  std::vector<CertExtensions> ext;
  for (const Cert* c : path) {
    auto e = parseExtensions(c->c->der);
    if (!e) return refuse(VerifyFailure::kMalformed, "unreadable certificate extensions");
    ext.push_back(std::move(*e));
  }
  for (size_t i = 0; i < path.size(); ++i) {
    const ParsedCert& x = *path[i]->c;
    const char* what = i == 0 ? "the certificate" : (i == rootAt ? "the root" : "an intermediate");
    // 2. Dates, per the policy, below the root (the store vets a root's dates when installed).
    if (i < rootAt) {
      bool early = policy.nowMs < x.notBeforeMs, late = policy.nowMs > x.notAfterMs;
      if (early || late) {
        if (!policy.ignoreValidity) {
          return refuse(late ? VerifyFailure::kExpired : VerifyFailure::kNotYetValid,
                        std::string(what) + (late ? " expired" : " is not yet valid"));
        }
        peer.datesIgnored = true;
      }
      // 3. Signatures below the root: SHA-256/384/512 with RSA or ECDSA, or Ed25519. SHA-1 is
      //    named; MD5, SHA-224 and RSA-PSS are refused too (an allowlist, not a denylist).
      if (x.sha1Signature) {
        return refuse(VerifyFailure::kPolicyViolation, "a SHA-1 signature in the chain");
      }
      if (!x.strongSignature) {
        return refuse(VerifyFailure::kPolicyViolation, std::string(what) + " has a signature algorithm capnet does not accept");
      }
    }
    // 4. Keys: RSA >= 2048 bits, ECDSA P-256 or P-384, Ed25519.
    if (auto weak = keyRuleViolation(x)) return refuse(VerifyFailure::kPolicyViolation, std::string(what) + " has " + *weak);
    // 5. No critical extension capnet does not process.
    if (!ext[i].unhandledCritical.empty()) {
      return refuse(VerifyFailure::kPolicyViolation,
                    std::string(what) + " carries an unhandled critical extension " + ext[i].unhandledCritical[0]);
    }
  }
  // 6. RFC 5280 for every CA of the path (the intermediates and the root).
  for (size_t i = 1; i < path.size(); ++i) {
    const CertExtensions& ca = ext[i];
    const char* what = i == rootAt ? "the root" : "an intermediate";
    if (!ca.hasBasicConstraints || !ca.isCa) {
      return refuse(VerifyFailure::kPolicyViolation, std::string(what) + " is not a CA (basicConstraints)");
    }
    if (ca.hasKeyUsage && !ca.keyCertSign) {
      return refuse(VerifyFailure::kPolicyViolation, std::string(what) + "'s keyUsage lacks keyCertSign");
    }
    // pathLenConstraint: how many intermediates may follow this CA towards the leaf.
    const size_t below = i - 1;
    if (ca.pathLen && below > *ca.pathLen) {
      return refuse(VerifyFailure::kPolicyViolation,
                    std::string(what) + " allows " + std::to_string(*ca.pathLen) + " intermediates below it (pathLenConstraint)");
    }
    // Name constraints bind the leaf's DNS names and IP addresses (and the host).
    if (ca.hasNameConstraints) {
      std::vector<std::string> addresses = ext[0].ipAddresses;
      if (auto host = ipv4Literal(policy.host)) addresses.push_back(*host);
      for (const auto& a : addresses) {
        if (!ipWithinConstraints(a, ca)) {
          return refuse(VerifyFailure::kPolicyViolation, "an IP address of the certificate is outside a CA's name constraints");
        }
      }
      std::vector<std::string> names = ext[0].dnsNames;
      if (!ipv4Literal(policy.host)) names.push_back(policy.host);
      for (const auto& n : names) {
        for (const auto& x : ca.excludedDns) {
          if (dnsWithin(n, x)) return refuse(VerifyFailure::kPolicyViolation, n + " is excluded by a CA's name constraints");
        }
        if (!ca.permittedDns.empty() &&
            std::none_of(ca.permittedDns.begin(), ca.permittedDns.end(), [&](const std::string& p) { return dnsWithin(n, p); })) {
          return refuse(VerifyFailure::kPolicyViolation, n + " is outside a CA's permitted names");
        }
      }
    }
  }

  // 7. The leaf names the host in its subjectAltName; the common name is never consulted.
  if (ext[0].dnsNames.empty() && ext[0].ipAddresses.empty()) {
    return refuse(VerifyFailure::kPolicyViolation, "the certificate has no subjectAltName");
  }
  if (!hostMatches(ext[0], policy.host)) {
    return refuse(VerifyFailure::kHostnameMismatch, "the certificate does not name " + policy.host);
  }
  if (ext[0].isCa) return refuse(VerifyFailure::kPolicyViolation, "the leaf is a CA");
  // 8. extendedKeyUsage, when present, must allow serverAuth.
  if (leaf.c->ekuPresent && !leaf.c->ekuServerAuth) {
    return refuse(VerifyFailure::kPolicyViolation, "extendedKeyUsage does not include serverAuth");
  }

  // 9. Fingerprints and pins (RFC 7469: the SHA-256 of the DER SubjectPublicKeyInfo). A pin
  //    matches any certificate of the validated path: the leaf, an intermediate or the root (a
  //    backup pin on the issuing CA is the usual practice).
  wc_Sha256Hash(leaf.c->der.data(), static_cast<word32>(leaf.c->der.size()), peer.leafSha256.data());
  if (auto pin = spkiSha256(leaf.c->der)) peer.spkiSha256 = *pin;
  if (!policy.pins.empty()) {
    if (policy.nowMs >= policy.pinsExpireAtMs) {
      peer.pinsSkipped = true;
    } else {
      bool matched = false;
      for (const Cert* c : path) {
        auto k = spkiSha256(c->c->der);
        matched = matched || (k && std::find(policy.pins.begin(), policy.pins.end(), *k) != policy.pins.end());
      }
      if (!matched) return refuse(VerifyFailure::kPinMismatch, "no key of the certificate path matches a pin");
    }
  }
  return peer;
}

}  // namespace capnet

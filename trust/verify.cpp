#include "trust/verify.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/evp.h>
#include <wolfssl/openssl/x509v3.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "trust/asn1-time.h"
#include "trust/spki.h"

#include <algorithm>
#include <ctime>
#include <memory>

namespace capnet {
namespace {

Error<VerifyFailure> refuse(VerifyFailure f, std::string why) { return fail(f, std::move(why)); }

struct X509Free {
  void operator()(WOLFSSL_X509* x) const { wolfSSL_X509_free(x); }
};
using X509Ptr = std::unique_ptr<WOLFSSL_X509, X509Free>;

X509Ptr parseDer(const std::string& der) {
  return X509Ptr(wolfSSL_X509_load_certificate_buffer(reinterpret_cast<const unsigned char*>(der.data()),
                                                      static_cast<int>(der.size()), WOLFSSL_FILETYPE_ASN1));
}

bool toEpochMs(const WOLFSSL_ASN1_TIME* t, int64_t& ms) { return asn1TimeToEpochMs(t, ms); }

// The trust decision is wolfSSL's; dates are this policy's (checked below against policy.nowMs), so
// wolfSSL's own date errors are overridden here.
int ignoreDateErrors(int preverify, WOLFSSL_X509_STORE_CTX* store) {
  if (preverify) return 1;
  int e = store ? store->error : 0;
  return (e == ASN_AFTER_DATE_E || e == ASN_BEFORE_DATE_E || e == 9 || e == 10) ? 1 : 0;
}

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

Result<VerifiedPeer, VerifyFailure> verifyChain(const std::vector<std::string>& chainDer,
                                                const std::vector<TrustRoot>& roots, const VerifyPolicy& policy) {
  if (chainDer.empty()) return refuse(VerifyFailure::kMalformed, "no certificate");
  std::vector<X509Ptr> chain;
  for (const auto& der : chainDer) {
    chain.push_back(parseDer(der));
    if (!chain.back()) return refuse(VerifyFailure::kMalformed, "a certificate in the chain does not parse");
  }

  // 1. Trust: from the top intermediate down, each verified against the roots and the
  //    intermediates already verified.
  std::unique_ptr<WOLFSSL_CERT_MANAGER, void (*)(WOLFSSL_CERT_MANAGER*)> cm(wolfSSL_CertManagerNew(),
                                                                            wolfSSL_CertManagerFree);
  if (!cm) return refuse(VerifyFailure::kMalformed, "out of memory");
  wolfSSL_CertManagerSetVerify(cm.get(), ignoreDateErrors);
  size_t loaded = 0;
  for (const auto& r : roots) {
    if (wolfSSL_CertManagerLoadCABuffer(cm.get(), reinterpret_cast<const unsigned char*>(r.pem.data()),
                                        static_cast<long>(r.pem.size()), WOLFSSL_FILETYPE_PEM) == WOLFSSL_SUCCESS) {
      ++loaded;
    }
  }
  if (loaded == 0) return refuse(VerifyFailure::kUntrustedIssuer, "the trust store holds no roots");
  for (size_t i = chainDer.size(); i-- > 0;) {
    const auto& der = chainDer[i];
    int rc = wolfSSL_CertManagerVerifyBuffer(cm.get(), reinterpret_cast<const unsigned char*>(der.data()),
                                             static_cast<long>(der.size()), WOLFSSL_FILETYPE_ASN1);
    if (rc != WOLFSSL_SUCCESS && rc != ASN_AFTER_DATE_E && rc != ASN_BEFORE_DATE_E) {
      return refuse(VerifyFailure::kUntrustedIssuer, i == 0 ? "no trusted root signed this chain"
                                                             : "an intermediate does not chain to a trusted root");
    }
    if (i > 0) {
      if (wolfSSL_X509_get_isCA(chain[i].get()) != 1) {
        return refuse(VerifyFailure::kPolicyViolation, "an intermediate is not a CA (basicConstraints)");
      }
      wolfSSL_CertManagerLoadCABuffer(cm.get(), reinterpret_cast<const unsigned char*>(der.data()),
                                      static_cast<long>(der.size()), WOLFSSL_FILETYPE_ASN1);
    }
  }

  VerifiedPeer peer;
  // 2. Dates, per the policy, for every certificate the peer sent.
  for (size_t i = 0; i < chain.size(); ++i) {
    int64_t notBefore = 0, notAfter = 0;
    if (!toEpochMs(wolfSSL_X509_get_notBefore(chain[i].get()), notBefore) ||
        !toEpochMs(wolfSSL_X509_get_notAfter(chain[i].get()), notAfter)) {
      return refuse(VerifyFailure::kMalformed, "unreadable validity dates");
    }
    bool early = policy.nowMs < notBefore, late = policy.nowMs > notAfter;
    if (early || late) {
      if (!policy.ignoreValidity) {
        return refuse(late ? VerifyFailure::kExpired : VerifyFailure::kNotYetValid,
                      std::string(i == 0 ? "the certificate" : "an intermediate") + (late ? " expired" : " is not yet valid"));
      }
      peer.datesIgnored = true;
    }
    // 3. No SHA-1 signature below the root.
    int sig = wolfSSL_X509_get_signature_nid(chain[i].get());
    if (sig == NID_sha1WithRSAEncryption || sig == CTC_SHAwECDSA) {
      return refuse(VerifyFailure::kPolicyViolation, "a SHA-1 signature in the chain");
    }
    // 4. RSA keys of at least 2048 bits.
    if (WOLFSSL_EVP_PKEY* key = wolfSSL_X509_get_pubkey(chain[i].get())) {
      bool weak = wolfSSL_EVP_PKEY_base_id(key) == EVP_PKEY_RSA && wolfSSL_EVP_PKEY_bits(key) < 2048;
      wolfSSL_EVP_PKEY_free(key);
      if (weak) return refuse(VerifyFailure::kPolicyViolation, "an RSA key shorter than 2048 bits");
    }
  }

  WOLFSSL_X509* leaf = chain[0].get();
  // 5. The leaf names the host in its subjectAltName; the common name is never consulted.
  void* san = wolfSSL_X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr);
  if (san == nullptr) return refuse(VerifyFailure::kPolicyViolation, "the certificate has no subjectAltName");
  wolfSSL_sk_GENERAL_NAME_pop_free(static_cast<WOLF_STACK_OF(WOLFSSL_GENERAL_NAME)*>(san), wolfSSL_GENERAL_NAME_free);
  if (wolfSSL_X509_check_host(leaf, policy.host.c_str(), policy.host.size(), 0, nullptr) != WOLFSSL_SUCCESS) {
    return refuse(VerifyFailure::kHostnameMismatch, "the certificate does not name " + policy.host);
  }
  if (wolfSSL_X509_get_isCA(leaf) == 1) return refuse(VerifyFailure::kPolicyViolation, "the leaf is a CA");
  // 6. extendedKeyUsage, when present, must allow serverAuth.
  unsigned int eku = wolfSSL_X509_get_extended_key_usage(leaf);
  if (eku != 0 && !(eku & XKU_SSL_SERVER)) {
    return refuse(VerifyFailure::kPolicyViolation, "extendedKeyUsage does not include serverAuth");
  }

  // 7. Fingerprints and pins.
  int derLen = 0;
  if (const unsigned char* der = wolfSSL_X509_get_der(leaf, &derLen); der != nullptr && derLen > 0) {
    wc_Sha256Hash(der, static_cast<word32>(derLen), peer.leafSha256.data());
  }
  // The leaf's key as RFC 7469 pins hash it: SHA-256 of the DER SubjectPublicKeyInfo.
  auto leafDer = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(chainDer[0].data()), chainDer[0].size());
  if (auto pin = spkiSha256(leafDer)) peer.spkiSha256 = *pin;
  if (!policy.pins.empty()) {
    if (policy.nowMs >= policy.pinsExpireAtMs) {
      peer.pinsSkipped = true;
    } else {
      // A pin matches any certificate of the validated path: the leaf, an intermediate, or the
      // root that anchored it (a backup pin on the issuing CA is the usual practice).
      std::vector<std::array<uint8_t, 32>> pathKeys;
      for (const auto& der : chainDer) {
        if (auto k = spkiSha256(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(der.data()), der.size()))) {
          pathKeys.push_back(*k);
        }
      }
      WOLFSSL_X509_NAME* topIssuer = wolfSSL_X509_get_issuer_name(chain.back().get());
      for (const auto& r : roots) {
        X509Ptr root(wolfSSL_X509_load_certificate_buffer(r.der.data(), static_cast<int>(r.der.size()),
                                                          WOLFSSL_FILETYPE_ASN1));
        if (!root || wolfSSL_X509_NAME_cmp(wolfSSL_X509_get_subject_name(root.get()), topIssuer) != 0) continue;
        if (auto k = spkiSha256(std::span<const uint8_t>(r.der.data(), r.der.size()))) pathKeys.push_back(*k);
      }
      bool matched = false;
      for (const auto& pin : policy.pins) {
        matched = matched || std::find(pathKeys.begin(), pathKeys.end(), pin) != pathKeys.end();
      }
      if (!matched) return refuse(VerifyFailure::kPinMismatch, "no key of the certificate path matches a pin");
    }
  }
  return peer;
}

}  // namespace capnet

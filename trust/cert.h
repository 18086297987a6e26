// One X.509 certificate as capnet's checks read it: parsed once by wolfCrypt's certificate decoder
// (the decoder wolfSSL's own handshake uses), without wolfSSL's X509 object layer, which in 5.5.4
// cannot hold an Ed25519 key. The path builder (trust/verify.h) and the trust store's install
// checks (trust/trust-store.h) read certificates only through this.
//
// Parsing takes untrusted bytes: a certificate that does not decode is nullopt, never a crash.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace capnet {

enum class KeyType : uint8_t { kOther = 0, kRsa, kEc, kEd25519 };

struct ParsedCert {
  std::vector<uint8_t> der;
  std::vector<uint8_t> subjectHash;   // hashes of the DER names: issuer/subject matching
  std::vector<uint8_t> issuerHash;
  std::string subject;                // one line, "/CN=..."
  int64_t notBeforeMs = 0;
  int64_t notAfterMs = 0;
  KeyType keyType = KeyType::kOther;
  int keyBits = 0;                    // RSA modulus bits; EC curve bits (256, 384, ...); 256 for Ed25519
  uint32_t keyOid = 0;                // wolfCrypt's key algorithm sum (RSAk, ECDSAk, ED25519k)
  std::vector<uint8_t> publicKey;     // the key as wolfCrypt's signature check takes it
  bool sha1Signature = false;         // signed with SHA-1 (RSA or ECDSA)
  bool strongSignature = false;       // signed with SHA-256/384/512 (RSA PKCS#1 v1.5 or ECDSA) or Ed25519
  bool ekuPresent = false;            // extendedKeyUsage present ...
  bool ekuServerAuth = false;         // ... and allows serverAuth
  bool isCa = false;                  // basicConstraints CA:TRUE, as wolfCrypt read it

  bool selfIssued() const { return subjectHash == issuerHash; }
};

// nullopt when wolfCrypt does not decode the bytes as a certificate (no date check is made here).
std::optional<ParsedCert> parseCert(std::span<const uint8_t> der);

// Whether `issuer`'s key verifies `child`'s signature (RSA PKCS#1 v1.5, ECDSA, Ed25519).
bool signedBy(const ParsedCert& child, const ParsedCert& issuer);

// The key rules every certificate of a path meets: RSA of at least 2048 bits, ECDSA on P-256 or
// P-384, or Ed25519. nullopt when the key is acceptable, else what is wrong with it.
std::optional<std::string> keyRuleViolation(const ParsedCert& cert);

// The DER of each "CERTIFICATE" block of a PEM text, in order (blocks that do not decode as base64
// are skipped; at most 64). PEM to DER only: nothing is interpreted here.
std::vector<std::vector<uint8_t>> pemCertificates(std::string_view pem);

}  // namespace capnet

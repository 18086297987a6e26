#include "trust/cert.h"

#include "trust/der.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include <ctime>
#include <memory>

namespace capnet {
namespace {

bool dateMs(const byte* field, int fieldLen, int64_t& ms) {
  if (field == nullptr || fieldLen <= 0) return false;
  const byte* date = nullptr;
  byte format = 0;
  int length = 0;
  if (wc_GetDateInfo(field, fieldLen, &date, &format, &length) != 0) return false;
  struct tm tm {};
  if (wc_GetDateAsCalendarTime(date, length, format, &tm) != 0) return false;
  ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  return true;
}

// The exact bit length of an RSAPublicKey's modulus (PKCS#1: SEQUENCE { INTEGER n, INTEGER e }).
int rsaBits(const std::vector<uint8_t>& pkcs1) {
  auto seq = der::read(pkcs1);
  if (!seq || seq->tag != 0x30) return 0;
  auto n = der::read(seq->contents);
  if (!n || n->tag != 0x02) return 0;
  auto m = n->contents;
  while (!m.empty() && m.front() == 0) m = m.subspan(1);
  if (m.empty()) return 0;
  int bits = static_cast<int>(m.size() - 1) * 8;
  for (uint8_t top = m.front(); top != 0; top >>= 1) ++bits;
  return bits;
}

struct Decoded {
  DecodedCert dc;
  Decoded(const uint8_t* p, size_t n) { InitDecodedCert(&dc, p, static_cast<word32>(n), nullptr); }
  ~Decoded() { FreeDecodedCert(&dc); }
  Decoded(const Decoded&) = delete;
  Decoded& operator=(const Decoded&) = delete;
};

}  // namespace

std::optional<ParsedCert> parseCert(std::span<const uint8_t> der) {
  if (der.empty() || der.size() > 64 * 1024) return std::nullopt;
  ParsedCert out;
  out.der.assign(der.begin(), der.end());
  // DecodedCert points into the bytes it decodes: decode the copy the result keeps.
  auto d = std::make_unique<Decoded>(out.der.data(), out.der.size());
  DecodedCert& dc = d->dc;
  if (ParseCert(&dc, CERT_TYPE, NO_VERIFY, nullptr) != 0) return std::nullopt;
  out.subjectHash.assign(dc.subjectHash, dc.subjectHash + KEYID_SIZE);
  out.issuerHash.assign(dc.issuerHash, dc.issuerHash + KEYID_SIZE);
  out.subject.assign(dc.subject, strnlen(dc.subject, sizeof(dc.subject)));
  if (!dateMs(dc.beforeDate, dc.beforeDateLen, out.notBeforeMs) || !dateMs(dc.afterDate, dc.afterDateLen, out.notAfterMs)) {
    return std::nullopt;
  }
  out.keyOid = dc.keyOID;
  if (dc.publicKey != nullptr && dc.pubKeySize > 0) out.publicKey.assign(dc.publicKey, dc.publicKey + dc.pubKeySize);
  switch (dc.keyOID) {
    case RSAk:
      out.keyType = KeyType::kRsa;
      out.keyBits = rsaBits(out.publicKey);
      break;
    case ECDSAk:
      out.keyType = KeyType::kEc;
      out.keyBits = dc.pkCurveOID == ECC_SECP256R1_OID ? 256 : dc.pkCurveOID == ECC_SECP384R1_OID ? 384 : 0;
      break;
    case ED25519k:
      out.keyType = KeyType::kEd25519;
      out.keyBits = 256;
      break;
    default:
      out.keyType = KeyType::kOther;
  }
  out.sha1Signature = dc.signatureOID == CTC_SHAwRSA || dc.signatureOID == CTC_SHAwECDSA;
  switch (dc.signatureOID) {
    case CTC_SHA256wRSA: case CTC_SHA384wRSA: case CTC_SHA512wRSA:
    case CTC_SHA256wECDSA: case CTC_SHA384wECDSA: case CTC_SHA512wECDSA:
    case CTC_ED25519:
      out.strongSignature = true;
      break;
    default:
      break;   // MD5, SHA-1, SHA-224, RSA-PSS and anything else
  }
  out.ekuPresent = dc.extExtKeyUsageSet;
  out.ekuServerAuth = (dc.extExtKeyUsage & EXTKEYUSE_SERVER_AUTH) != 0;
  out.isCa = dc.isCA;
  return out;
}

bool signedBy(const ParsedCert& child, const ParsedCert& issuer) {
  if (issuer.publicKey.empty()) return false;
  return wc_CheckCertSigPubKey(child.der.data(), static_cast<word32>(child.der.size()), nullptr, issuer.publicKey.data(),
                               static_cast<word32>(issuer.publicKey.size()), static_cast<int>(issuer.keyOid)) == 0;
}

std::optional<std::string> keyRuleViolation(const ParsedCert& cert) {
  switch (cert.keyType) {
    case KeyType::kRsa:
      if (cert.keyBits < 2048) return "an RSA key shorter than 2048 bits";
      return std::nullopt;
    case KeyType::kEc:
      if (cert.keyBits == 256 || cert.keyBits == 384) return std::nullopt;
      return "an EC key on a curve other than P-256 or P-384";
    case KeyType::kEd25519:
      return std::nullopt;
    case KeyType::kOther:
      break;
  }
  return "a key type other than RSA, ECDSA or Ed25519";
}

std::vector<std::vector<uint8_t>> pemCertificates(std::string_view pem) {
  std::vector<std::vector<uint8_t>> out;
  constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----", kEnd = "-----END CERTIFICATE-----";
  for (size_t pos = pem.find(kBegin); pos != std::string_view::npos && out.size() < 64; pos = pem.find(kBegin, pos + 1)) {
    size_t stop = pem.find(kEnd, pos);
    if (stop == std::string_view::npos) break;
    std::string_view one = pem.substr(pos, stop + kEnd.size() - pos);
    std::vector<uint8_t> der(one.size());
    int len = wc_CertPemToDer(reinterpret_cast<const unsigned char*>(one.data()), static_cast<int>(one.size()), der.data(),
                              static_cast<int>(der.size()), CERT_TYPE);
    if (len <= 0) continue;
    der.resize(static_cast<size_t>(len));
    out.push_back(std::move(der));
  }
  return out;
}

}  // namespace capnet

#include "trust/spki.h"

#include "trust/der.h"

#include <kj/encoding.h>

#include <algorithm>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

namespace capnet {
namespace {

using der::Element;


constexpr uint8_t kSequence = 0x30;
constexpr uint8_t kInteger = 0x02;
constexpr uint8_t kVersionTag = 0xa0;   // [0] EXPLICIT Version

}  // namespace

std::optional<std::span<const uint8_t>> subjectPublicKeyInfo(std::span<const uint8_t> certDer) {
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
  auto cert = der::read(certDer);
  if (!cert || cert->tag != kSequence) return std::nullopt;
  // TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer,
  //                               validity, subject, subjectPublicKeyInfo, ... }
  auto tbs = der::read(cert->contents);
  if (!tbs || tbs->tag != kSequence) return std::nullopt;
  std::span<const uint8_t> rest = tbs->contents;
  auto next = [&rest]() -> std::optional<Element> {
    auto e = der::read(rest);
    if (e) rest = rest.subspan(e->whole.size());
    return e;
  };
  auto first = next();
  if (!first) return std::nullopt;
  if (first->tag == kVersionTag) first = next();                // serialNumber follows the version.
  if (!first || first->tag != kInteger) return std::nullopt;    // serialNumber
  for (int field = 0; field < 4; ++field) {                     // signature, issuer, validity, subject
    auto e = next();
    if (!e || e->tag != kSequence) return std::nullopt;
  }
  auto spki = next();
  if (!spki || spki->tag != kSequence) return std::nullopt;
  return spki->whole;
}

std::optional<std::array<uint8_t, 32>> spkiSha256(std::span<const uint8_t> certDer) {
  auto spki = subjectPublicKeyInfo(certDer);
  if (!spki) return std::nullopt;
  std::array<uint8_t, 32> out{};
  if (wc_Sha256Hash(spki->data(), static_cast<word32>(spki->size()), out.data()) != 0) return std::nullopt;
  return out;
}

std::string pinBase64(const std::array<uint8_t, 32>& sha256) {
  return std::string(kj::encodeBase64(kj::arrayPtr(sha256.data(), sha256.size())).cStr());
}

}  // namespace capnet

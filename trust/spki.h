// The SubjectPublicKeyInfo of an X.509 certificate, as RFC 7469 pins hash it: the DER of the
// certificate's subjectPublicKeyInfo field, found by walking the certificate's DER. This is the
// value `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256`
// hashes (and curl's --pinnedpubkey sha256//, Android's Network Security Config). wolfSSL's
// wolfSSL_i2d_PUBKEY gives the bare PKCS#1 RSAPublicKey for RSA keys instead, so it is not used.
//
// A pure function over untrusted bytes: every length is checked against what is left.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace capnet {

// The subjectPublicKeyInfo element (tag, length and contents) inside `certDer`, or nullopt when
// the bytes are not a certificate this walk understands.
std::optional<std::span<const uint8_t>> subjectPublicKeyInfo(std::span<const uint8_t> certDer);

// SHA-256 of that element: the RFC 7469 pin of the certificate's key.
std::optional<std::array<uint8_t, 32>> spkiSha256(std::span<const uint8_t> certDer);

// The pin as configs and tools write it: base64 of the SHA-256.
std::string pinBase64(const std::array<uint8_t, 32>& sha256);

}  // namespace capnet

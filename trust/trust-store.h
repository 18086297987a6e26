// The trust store: the canonical TLS roots. `pkg://trust/` holds the roots shipped read-only in the
// image; `state:/trust/installed/` holds roots installed on the persistent disk. netd's TLS trusts
// exactly what this store lists, never the machine's system store.
//
// Parsing is a pure function over bytes (parseRoot); installing is atomic (temporary file, fsync,
// rename, fsync of the directory), so a power cut leaves either the old set or the new one.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/paths.h"
#include "trust/cert.h"
#include "common/result.h"

namespace capnet {

struct TrustRoot {
  std::array<uint8_t, 32> sha256{};   // of the certificate's DER
  std::string subject;
  std::string notAfter;
  std::string origin;                 // "pkg" or "state"
  std::string path;
  std::string pem;
  std::vector<uint8_t> der;           // the parsed certificate, as the store keeps it
  std::shared_ptr<const ParsedCert> parsed;   // the same, decoded once (verifyChain reads it)
};

enum class TrustError : uint8_t {
  kInvalid = 0, kNotCa, kDuplicate, kNotFound, kReadOnly, kIo,
  kNotSelfSigned,   // an installed root must sign itself (subject = issuer, own key verifies)
  kOutsideValidity, // not yet valid or expired at install time
  kWeakKey,         // RSA below 2048 bits, or a key type capnet does not accept
  kTooMany,         // kMaxInstalledRoots reached
};

// Installed roots a store holds at most (shipped roots are not counted).
inline constexpr size_t kMaxInstalledRoots = 64;

// One PEM certificate that is a CA (basicConstraints CA:TRUE). Refuses anything else, with a reason.
Result<TrustRoot, TrustError> parseRoot(std::span<const uint8_t> pem);

std::string hexFingerprint(const std::array<uint8_t, 32>& sha256);

class TrustStore {
 public:
  explicit TrustStore(Roots roots);

  // Every root in both directories, shipped first. A file that is not a CA certificate is skipped
  // and reported in `problems` (never fatal).
  std::vector<TrustRoot> list(std::vector<std::string>* problems = nullptr) const;

  // Installs a root into state:/trust/installed/ atomically. On top of parseRoot, an installed
  // root must be self-signed, inside its validity at `nowMs` (wall clock), with a strong key (RSA
  // >= 2048 bits, or EC), and the store must hold fewer than kMaxInstalledRoots.
  Result<TrustRoot, TrustError> add(std::span<const uint8_t> pem, int64_t nowMs);
  // Removes an installed root by fingerprint (hex); shipped roots cannot be removed.
  Result<Ok, TrustError> remove(const std::string& fingerprintHex);

  std::string installedDir() const;
  std::string shippedDir() const;

 private:
  Roots roots_;
};

}  // namespace capnet

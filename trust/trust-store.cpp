#include "trust/trust-store.h"

#include "common/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <kj/encoding.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <ctime>
#include <memory>

#include "trust/cert.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace capnet {
namespace {

constexpr size_t kMaxPemBytes = 64 * 1024;

std::vector<std::string> pemFilesIn(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    // Temporary files of an interrupted install (".name.tmp") are not roots.
    if (n.size() > 4 && n[0] != '.' && n.compare(n.size() - 4, 4, ".pem") == 0) out.push_back(dir + "/" + n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string hexFingerprint(const std::array<uint8_t, 32>& sha256) {
  return std::string(kj::encodeHex(kj::arrayPtr(sha256.data(), sha256.size())).cStr());
}

namespace {

std::string isoDate(int64_t ms) {
  time_t t = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  char out[32] = {};
  if (gmtime_r(&t, &tm) == nullptr || std::strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return "?";
  return out;
}

}  // namespace

Result<TrustRoot, TrustError> parseRoot(std::span<const uint8_t> pem) {
  if (pem.size() > kMaxPemBytes) return fail(TrustError::kInvalid, "larger than 64 KiB");
  std::string text(reinterpret_cast<const char*>(pem.data()), pem.size());
  if (text.find("-----BEGIN CERTIFICATE-----") == std::string::npos) return fail(TrustError::kInvalid, "not a PEM certificate");
  if (text.find("-----BEGIN CERTIFICATE-----", text.find("-----END CERTIFICATE-----")) != std::string::npos) {
    return fail(TrustError::kInvalid, "more than one certificate in the file (install roots one by one)");
  }
  std::vector<uint8_t> der(pem.size());
  int derLen = wc_CertPemToDer(pem.data(), static_cast<int>(pem.size()), der.data(), static_cast<int>(der.size()), CERT_TYPE);
  if (derLen <= 0) return fail(TrustError::kInvalid, "the certificate does not parse");
  der.resize(static_cast<size_t>(derLen));
  auto cert = parseCert(der);
  if (!cert) return fail(TrustError::kInvalid, "the certificate does not parse");
  TrustRoot r;
  wc_Sha256Hash(der.data(), static_cast<word32>(der.size()), r.sha256.data());
  r.der = std::move(der);
  r.subject = cert->subject;
  r.notAfter = isoDate(cert->notAfterMs);
  r.pem = text;
  bool isCa = cert->isCa;
  r.parsed = std::make_shared<const ParsedCert>(std::move(*cert));
  if (!isCa) return fail(TrustError::kNotCa, "not a CA certificate (basicConstraints CA:TRUE is required): " + r.subject);
  return r;
}

namespace {

// What an installed root must be beyond a CA: self-signed, inside its validity, a strong key.
Result<Ok, TrustError> vetForInstall(const TrustRoot& root, int64_t nowMs) {
  auto x = parseCert(root.der);
  if (!x) return fail(TrustError::kInvalid, "the certificate does not parse");
  if (auto weak = keyRuleViolation(*x)) return fail(TrustError::kWeakKey, *weak + ": " + root.subject);
  if (!x->selfIssued() || !signedBy(*x, *x)) {
    return fail(TrustError::kNotSelfSigned, "not self-signed (install the root, not an intermediate): " + root.subject);
  }
  if (nowMs < x->notBeforeMs) return fail(TrustError::kOutsideValidity, "not yet valid: " + root.subject);
  if (nowMs > x->notAfterMs) return fail(TrustError::kOutsideValidity, "expired " + root.notAfter + ": " + root.subject);
  return Ok{};
}

}  // namespace

TrustStore::TrustStore(Roots roots) : roots_(std::move(roots)) {}

std::string TrustStore::installedDir() const { return roots_.resolve("state:/trust/installed").value_or(""); }
std::string TrustStore::shippedDir() const { return roots_.resolve("pkg://trust").value_or(""); }

std::vector<TrustRoot> TrustStore::list(std::vector<std::string>* problems) const {
  std::vector<TrustRoot> out;
  for (auto [dir, origin] : {std::pair{shippedDir(), "pkg"}, std::pair{installedDir(), "state"}}) {
    for (const auto& file : pemFilesIn(dir)) {
      auto read = readFileBounded(file, kMaxPemBytes);
      const std::string& pem = read.ok() ? read.value() : std::string();
      auto r = read.ok() ? parseRoot(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pem.data()), pem.size()))
                         : Result<TrustRoot, TrustError>(fail(TrustError::kIo, read.message()));
      if (!r.ok()) {
        if (problems) problems->push_back(file + ": " + r.message());
        continue;
      }
      r->origin = origin;
      r->path = file;
      out.push_back(std::move(r).value());
    }
  }
  return out;
}

Result<TrustRoot, TrustError> TrustStore::add(std::span<const uint8_t> pem, int64_t nowMs) {
  auto parsed = parseRoot(pem);
  if (!parsed.ok()) return parsed.error();
  auto vetted = vetForInstall(parsed.value(), nowMs);
  if (!vetted.ok()) return vetted.error();
  size_t installed = 0;
  for (const auto& existing : list()) {
    if (existing.sha256 == parsed->sha256) {
      return fail(TrustError::kDuplicate, "already trusted (" + existing.origin + "): " + existing.subject);
    }
    installed += existing.origin == "state";
  }
  if (installed >= kMaxInstalledRoots) {
    return fail(TrustError::kTooMany, std::to_string(kMaxInstalledRoots) + " installed roots already (remove one first)");
  }
  std::string dir = installedDir();
  if (dir.empty()) return fail(TrustError::kIo, "no state directory");
  // Create the directory (and its parents) on first install.
  for (size_t pos = 1; pos != std::string::npos; pos = dir.find('/', pos + 1)) {
    ::mkdir(dir.substr(0, pos).c_str(), 0755);
  }
  ::mkdir(dir.c_str(), 0755);
  std::string name = hexFingerprint(parsed->sha256) + ".pem";
  std::string tmp = dir + "/." + name + ".tmp", final = dir + "/" + name;
  // A temporary file left by an install that was killed is stale: replace it, never follow it.
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return fail(TrustError::kIo, "create " + tmp + ": " + std::strerror(errno));
  const std::string& text = parsed->pem;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), final.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return fail(TrustError::kIo, "install " + final + ": " + std::strerror(errno));
  }
  // The rename is durable only once the directory entry is.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  parsed->origin = "state";
  parsed->path = final;
  return parsed;
}

Result<Ok, TrustError> TrustStore::remove(const std::string& fingerprintHex) {
  for (const auto& r : list()) {
    if (hexFingerprint(r.sha256) != fingerprintHex) continue;
    if (r.origin != "state") return fail(TrustError::kReadOnly, "shipped roots (pkg://trust/) cannot be removed");
    if (::unlink(r.path.c_str()) != 0) return fail(TrustError::kIo, "remove " + r.path + ": " + std::strerror(errno));
    int dfd = ::open(installedDir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    return Ok{};
  }
  return fail(TrustError::kNotFound, "no installed root with fingerprint " + fingerprintHex);
}

}  // namespace capnet

#include <doctest/doctest.h>

#include "tests/support/temp-dir.h"
#include <sys/stat.h>
#include <unistd.h>
#include <chrono>
#include <signal.h>
#include <sched.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <sys/mount.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "trust/cert.h"
#include "trust/spki.h"
#include "trust/x509-ext.h"
#include "trust/trust-store.h"
#include "trust/verify.h"

using namespace capnet;

namespace {

std::string readAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
std::span<const uint8_t> bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }
// 2026-06-01, the guest's clock: inside the test PKI's windows.
constexpr int64_t kNow = 1780272000000LL;

std::string pki(const std::string& name) { return readAll(std::string(CAPNET_BUILD_DIR) + "/selftest/tls/" + name); }

struct Dirs {
  capnet::testing::TempDir tmp{"trust-test"};
  std::string base = tmp.path;
  Roots roots{base + "/pkg", base + "/state"};
  Dirs() {
    tmp.dir("pkg/trust");
    tmp.dir("state/trust/installed");
  }
};

}  // namespace

TEST_CASE("a CA certificate parses into a root with its fingerprint and subject") {
  auto r = parseRoot(bytes(pki("ca.pem")));
  REQUIRE(r.ok());
  CHECK(r->subject.find("capnet test root") != std::string::npos);
  CHECK(hexFingerprint(r->sha256).size() == 64);
  CHECK_FALSE(r->notAfter.empty());
}

TEST_CASE("non-certificates, leaf certificates and bundles are refused with their reason") {
  CHECK(parseRoot(bytes("hello")).message() == "not a PEM certificate");
  CHECK(parseRoot(bytes("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")).message() ==
        "the certificate does not parse");
  auto leaf = parseRoot(bytes(pki("good.pem")));
  CHECK(leaf.code() == TrustError::kNotCa);
  auto bundle = parseRoot(bytes(pki("ca.pem") + pki("ca.pem")));
  CHECK(bundle.message() == "more than one certificate in the file (install roots one by one)");
}

TEST_CASE("install is atomic, listed as state, refuses duplicates, and removal spares shipped roots") {
  Dirs d;
  std::ofstream(d.base + "/pkg/trust/shipped.pem") << pki("ca.pem");
  TrustStore store(d.roots);
  REQUIRE(store.list().size() == 1);
  auto dup = store.add(bytes(pki("ca.pem")), kNow);
  CHECK(dup.code() == TrustError::kDuplicate);
  // A root to install: the test PKI's not-yet-trusted root.
  auto added = store.add(bytes(pki("persist-root.pem")), kNow);
  REQUIRE(added.ok());
  CHECK(added->origin == "state");
  auto all = store.list();
  REQUIRE(all.size() == 2);
  CHECK(all[1].origin == "state");
  // No temporary file remains, and a stray one (an interrupted install) is not a root.
  std::ofstream(d.base + "/state/trust/installed/.x.pem.tmp") << "partial";
  CHECK(store.list().size() == 2);
  auto shipped = store.remove(hexFingerprint(all[0].sha256));
  CHECK(shipped.code() == TrustError::kReadOnly);
  CHECK(store.remove(hexFingerprint(added->sha256)).ok());
  CHECK(store.list().size() == 1);
  CHECK(store.remove(hexFingerprint(added->sha256)).code() == TrustError::kNotFound);
}

TEST_CASE("a file in a trust directory that is not a CA is skipped and reported, never fatal") {
  Dirs d;
  std::ofstream(d.base + "/pkg/trust/root.pem") << pki("ca.pem");
  std::ofstream(d.base + "/state/trust/installed/leaf.pem") << pki("good.pem");
  std::ofstream(d.base + "/state/trust/installed/junk.pem") << "junk";
  TrustStore store(d.roots);
  std::vector<std::string> problems;
  CHECK(store.list(&problems).size() == 1);
  CHECK(problems.size() == 2);
}

TEST_CASE("an installed root must be self-signed, inside its validity, with a strong key, and the store is capped") {
  Dirs d;
  TrustStore store(d.roots);
  auto inter = store.add(bytes(pki("ca-intermediate.pem")), kNow);
  CHECK(inter.code() == TrustError::kNotSelfSigned);
  auto old = store.add(bytes(pki("ca-expired.pem")), kNow);
  CHECK(old.code() == TrustError::kOutsideValidity);
  auto early = store.add(bytes(pki("ca.pem")), 1735689600000LL);   // 2025-01-01: before its window.
  CHECK(early.code() == TrustError::kOutsideValidity);
  auto weak = store.add(bytes(pki("ca-rsa1024.pem")), kNow);
  CHECK(weak.code() == TrustError::kWeakKey);
  CHECK(store.list().empty());
  auto ok = store.add(bytes(pki("ca.pem")), kNow);
  REQUIRE(ok.ok());
  CHECK(ok->der.size() > 100);   // the store keeps the parsed DER.
  CHECK(ok->notAfter == "2036-01-01T00:00:00Z");
  auto ed = store.add(bytes(pki("ca-ed25519.pem")), kNow);   // an Ed25519 root: its own signature checked
  CHECK_MESSAGE(ed.ok(), (ed.ok() ? std::string() : ed.message()));
  REQUIRE(store.remove(hexFingerprint(ed->sha256)).ok());
  // The cap: fill the installed directory to kMaxInstalledRoots with distinct copies on disk.
  for (size_t i = 1; i < kMaxInstalledRoots; ++i) {
    std::ofstream(d.base + "/state/trust/installed/copy" + std::to_string(i) + ".pem") << pki("persist-root.pem");
  }
  auto over = store.add(bytes(pki("ca-expired.pem")), 1600000000000LL);   // valid in 2020: only the cap refuses it.
  CHECK(over.code() == TrustError::kTooMany);
}

TEST_CASE("an install killed at any moment (SIGKILL, 150 times across its whole span) leaves only whole roots") {
  Dirs d;
  std::string pem = pki("ca.pem");
  auto expected = parseRoot(bytes(pem));
  REQUIRE(expected.ok());
  // How long a forked install takes here, to spread the kills over it.
  auto installInChild = [&]() {
    pid_t pid = ::fork();
    if (pid == 0) {
      TrustStore s(d.roots);
      ::_exit(s.add(bytes(pem), kNow).ok() ? 0 : 1);
    }
    return pid;
  };
  auto t0 = std::chrono::steady_clock::now();
  pid_t probe = installInChild();
  int status = 0;
  ::waitpid(probe, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  auto span = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  TrustStore store(d.roots);
  REQUIRE(store.remove(hexFingerprint(expected->sha256)).ok());
  int present = 0, absent = 0;
  for (int i = 0; i < 150; ++i) {
    pid_t pid = installInChild();
    ::usleep(static_cast<useconds_t>(span * i / 120));   // 0 .. 1.25 x the install's span
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    std::vector<std::string> problems;
    auto roots = store.list(&problems);
    CHECK_MESSAGE(problems.empty(), "kill " << i << ": " << (problems.empty() ? "" : problems[0]));
    REQUIRE(roots.size() <= 1);
    if (roots.empty()) {
      ++absent;
      continue;
    }
    ++present;
    CHECK(roots[0].der == expected->der);   // whole, never a prefix
    REQUIRE(store.remove(hexFingerprint(roots[0].sha256)).ok());
  }
  MESSAGE("kills that left the root installed: " << present << ", before it was: " << absent << " (one install: " << span << " us)");
  // A temporary file a killed install left behind never blocks the next one, nor is it listed.
  std::ofstream(d.base + "/state/trust/installed/." + hexFingerprint(expected->sha256) + ".pem.tmp") << "partial";
  CHECK(store.add(bytes(pem), kNow).ok());
  CHECK(store.list().size() == 1);
}

TEST_CASE("a full disk during an install is a typed error and leaves nothing behind") {
  Dirs d;
  std::string pem = pki("ca.pem");
  // In a child: a private mount namespace with an 8 KiB tmpfs over the installed directory (a real
  // ENOSPC); where mounting is not permitted, a file-size limit makes the same write fail (EFBIG).
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    std::string how = "efbig";
    std::string dir = d.base + "/state/trust/installed";
    if (::unshare(CLONE_NEWNS) == 0 && ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
        ::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=8k") == 0) {
      how = "enospc";
      std::ofstream(dir + "/filler") << std::string(8192, 'x');   // the tmpfs is now full
    } else {
      ::signal(SIGXFSZ, SIG_IGN);
      rlimit lim{64, 64};
      ::setrlimit(RLIMIT_FSIZE, &lim);
    }
    TrustStore s(d.roots);
    auto r = s.add(bytes(pem), kNow);
    std::vector<std::string> problems;
    auto listed = s.list(&problems);
    std::string report = how + " " + (r.ok() ? "ok" : std::to_string(static_cast<int>(r.code())) + " " + r.message()) + " listed=" +
                         std::to_string(listed.size()) + " problems=" + std::to_string(problems.size());
    (void)!::write(pipefd[1], report.data(), report.size());
    ::_exit(0);
  }
  ::close(pipefd[1]);
  char buf[512] = {};
  ssize_t n = ::read(pipefd[0], buf, sizeof(buf) - 1);
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::string report(buf, n > 0 ? static_cast<size_t>(n) : 0);
  MESSAGE("full disk: " << report);
  CHECK(report.find(" " + std::to_string(static_cast<int>(TrustError::kIo)) + " install ") != std::string::npos);
  CHECK(report.find("listed=0 problems=0") != std::string::npos);
}

TEST_CASE("the SubjectPublicKeyInfo walk takes hostile bytes without reading past them") {
  CHECK_FALSE(subjectPublicKeyInfo({}).has_value());
  const uint8_t junk[] = {0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30};
  CHECK_FALSE(subjectPublicKeyInfo(junk).has_value());
  const uint8_t shortSeq[] = {0x30, 0x03, 0x30, 0x01};
  CHECK_FALSE(subjectPublicKeyInfo(shortSeq).has_value());
  // Every truncation of a real certificate is refused or yields an element inside the input.
  auto root = parseRoot(bytes(pki("ca.pem")));
  REQUIRE(root.ok());
  const auto& der = root->der;
  for (size_t n = 0; n < der.size(); ++n) {
    auto spki = subjectPublicKeyInfo(std::span<const uint8_t>(der.data(), n));
    if (spki) CHECK(spki->data() + spki->size() <= der.data() + n);
  }
  auto full = subjectPublicKeyInfo(der);
  REQUIRE(full.has_value());
  CHECK((*full)[0] == 0x30);
}

TEST_CASE("a certificate's pin is the RFC 7469 value OpenSSL computes") {
  for (const char* name : {"ca", "good", "ed25519", "ecdsa384"}) {
    auto ders = pemCertificates(pki(std::string(name) + ".pem"));
    REQUIRE(ders.size() == 1);
    auto pin = spkiSha256(ders[0]);
    REQUIRE(pin.has_value());
    std::string want = pki(std::string(name) + ".pin");
    while (!want.empty() && (want.back() == '\n' || want.back() == '\r')) want.pop_back();
    CHECK(pinBase64(*pin) == want);
  }
}

TEST_CASE("a leaf names the host as curl matches it: whole names, one left-most wildcard label, IPv4 in iPAddress only") {
  CertExtensions e;
  e.dnsNames = {"devnet.test", "*.wild.devnet.test", "*.test", "f*.devnet.test", "*"};
  e.ipAddresses = {std::string("\x0a\x00\x02\x65", 4)};   // 10.0.2.101
  CHECK(hostMatches(e, "devnet.test"));
  CHECK(hostMatches(e, "DEVNET.Test"));
  CHECK(hostMatches(e, "devnet.test."));
  CHECK(hostMatches(e, "a.wild.devnet.test"));
  CHECK_FALSE(hostMatches(e, "wild.devnet.test"));        // the wildcard stands for one label ...
  CHECK_FALSE(hostMatches(e, "a.b.wild.devnet.test"));    // ... exactly one
  CHECK_FALSE(hostMatches(e, "other.test"));              // "*.test": too few labels after the wildcard
  CHECK_FALSE(hostMatches(e, "foo.devnet.test"));         // partial wildcards are not honoured
  CHECK_FALSE(hostMatches(e, "evil.example"));            // "*" alone matches nothing
  CHECK_FALSE(hostMatches(e, "xdevnet.test"));
  CHECK_FALSE(hostMatches(e, ""));
  CHECK(hostMatches(e, "10.0.2.101"));
  CHECK_FALSE(hostMatches(e, "10.0.2.100"));
  CertExtensions dnsOnly;
  dnsOnly.dnsNames = {"10.0.2.101"};
  CHECK_FALSE(hostMatches(dnsOnly, "10.0.2.101"));          // an address is never matched against a dNSName
}

TEST_CASE("IP hosts: an iPAddress-only leaf verifies for its address, and a CA's IP name constraints bind it") {
  Dirs d;
  auto root = parseRoot(bytes(pki("ca.pem")));
  REQUIRE(root.ok());
  std::vector<TrustRoot> roots{root.value()};
  auto chainOf = [](const std::string& name) {
    std::vector<std::string> chain;
    for (const auto& der : pemCertificates(pki(name + ".pem"))) chain.emplace_back(der.begin(), der.end());
    return chain;
  };
  VerifyPolicy at;
  at.nowMs = kNow;
  at.host = "10.0.2.101";
  CHECK(verifyChain(chainOf("iponly"), roots, at).ok());
  at.host = "10.0.2.100";
  CHECK(verifyChain(chainOf("iponly"), roots, at).code() == VerifyFailure::kHostnameMismatch);
  // The CA excludes every IPv4 address: its leaf is refused, for the address and for its DNS name.
  at.host = "10.0.2.101";
  CHECK(verifyChain(chainOf("chain-ip-excluded"), roots, at).code() == VerifyFailure::kPolicyViolation);
  at.host = "devnet.test";
  CHECK(verifyChain(chainOf("chain-ip-excluded"), roots, at).code() == VerifyFailure::kPolicyViolation);
  // Subtrees by address and mask, per family.
  CertExtensions ca;
  ca.permittedIp = {std::string("\x0a\x00\x00\x00\xff\x00\x00\x00", 8)};   // 10.0.0.0/8
  CHECK(ipWithinConstraints(std::string("\x0a\x00\x02\x65", 4), ca));
  CHECK_FALSE(ipWithinConstraints(std::string("\xc0\xa8\x00\x01", 4), ca));
  ca.excludedIp = {std::string("\x0a\x00\x02\x00\xff\xff\xff\x00", 8)};    // but not 10.0.2.0/24
  CHECK_FALSE(ipWithinConstraints(std::string("\x0a\x00\x02\x65", 4), ca));
  CHECK(ipWithinConstraints(std::string(16, '\x01'), ca));   // no IPv6 subtree: IPv6 is unconstrained
}

TEST_CASE("DNS name constraints match the name and its subdomains only, case-insensitively") {
  CHECK(dnsWithin("devnet.test", "devnet.test"));
  CHECK(dnsWithin("a.devnet.test", "devnet.test"));
  CHECK(dnsWithin("A.DevNet.Test", "devnet.test"));
  CHECK_FALSE(dnsWithin("evildevnet.test", "devnet.test"));
  CHECK_FALSE(dnsWithin("devnet.test.evil", "devnet.test"));
  CHECK(dnsWithin("a.devnet.test", ".devnet.test"));
  CHECK_FALSE(dnsWithin("devnet.test", ".devnet.test"));
  CHECK(dnsWithin("anything", ""));
}

TEST_CASE("the extension walk reads the CA rules and survives every truncation and bit flip") {
  auto der = parseRoot(bytes(pki("ca.pem")))->der;
  auto e = parseExtensions(der);
  REQUIRE(e.has_value());
  CHECK(e->isCa);
  CHECK(e->keyCertSign);
  CHECK(e->unhandledCritical.empty());
  for (size_t n = 0; n < der.size(); ++n) (void)parseExtensions(std::span<const uint8_t>(der.data(), n));
  for (size_t i = 0; i < der.size(); ++i) {
    auto copy = der;
    copy[i] ^= 0xff;
    (void)parseExtensions(copy);   // any outcome but a crash (run under ASan in CI).
  }
}

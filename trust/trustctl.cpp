// trustctl: manage the trust store offline (users provisioning a state disk, CI).
//
//   trustctl pin FILE.pem           the RFC 7469 pin (base64 SPKI SHA-256) of each certificate
//   trustctl [--state DIR] [--pkg DIR] list
//   trustctl [--state DIR] add FILE.pem
//   trustctl [--state DIR] rm FINGERPRINT
//   trustctl --image STATE.img list | add FILE.pem | rm FINGERPRINT
//            (an ext4 state disk image, edited offline through e2fsprogs' debugfs)
//   trustctl [--state DIR] [--pkg DIR] verify --chain PEM --host NAME [--at YYYY-MM-DD]
//            [--pin BASE64-SPKI-SHA256]... [--pins-expire YYYY-MM-DD] [--time-policy enforce|ignore-validity]
//
// `verify` runs exactly the validation netd runs after a handshake (trust/verify.h) against the
// same trust store, and prints `accept ...` or `deny reason=... detail=...` (exit 0 or 1).
//
// DIR defaults to the guest's /state and /pkg. Exit: 0 done, 1 refused, 2 usage.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/cli.h"
#include "common/encoding.h"
#include "common/file.h"
#include "trust/cert.h"
#include "trust/spki.h"
#include "trust/trust-store.h"
#include "trust/verify.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <ctime>

namespace {

// A PEM file trustctl reads (a chain to verify, a root to add or pin): a few certificates at most.
constexpr size_t kMaxPemFileBytes = 1 << 20;

// Reads a PEM file given on the command line; false, with the reason on stderr, when it cannot.
bool readPem(const std::string& path, std::string& out) {
  auto read = capnet::readFileBounded(path, kMaxPemFileBytes);
  if (!read.ok()) {
    std::fprintf(stderr, "trustctl: %s\n", read.message().c_str());
    return false;
  }
  out = std::move(read).value();
  return true;
}

// Runs debugfs with `args` (no shell); true on exit status 0.
bool debugfs(const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    std::vector<char*> argv{const_cast<char*>("debugfs")};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp("debugfs", argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}



int verify(capnet::TrustStore& store, int argc, char** argv, int i) {
  std::string chainFile, host;
  capnet::VerifyPolicy policy;
  policy.nowMs = static_cast<int64_t>(std::time(nullptr)) * 1000;
  for (; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--chain") chainFile = v;
    else if (a == "--host") host = v;
    else if (a == "--at" && capnet::parseDate(v, policy.nowMs)) {}
    else if (a == "--pins-expire" && capnet::parseDate(v, policy.pinsExpireAtMs)) {}
    else if (a == "--pin") {
      std::vector<uint8_t> bytes;
      std::array<uint8_t, 32> d{};
      if (!capnet::decodeBase64(v, bytes) || bytes.size() != d.size()) {
        std::fprintf(stderr, "trustctl: --pin: not a base64 SHA-256\n");
        return 2;
      }
      std::copy(bytes.begin(), bytes.end(), d.begin());
      policy.pins.push_back(d);
    } else if (a == "--time-policy" && (v == "enforce" || v == "ignore-validity")) {
      policy.ignoreValidity = v == "ignore-validity";
    } else {
      std::fprintf(stderr, "trustctl: verify: bad argument %s %s\n", a.c_str(), v.c_str());
      return 2;
    }
  }
  if (i != argc || chainFile.empty() || host.empty()) {
    std::fprintf(stderr, "trustctl: verify needs --chain PEM and --host NAME\n");
    return 2;
  }
  if (!policy.pins.empty() && policy.pinsExpireAtMs == 0) policy.pinsExpireAtMs = INT64_MAX;
  policy.host = host;
  std::string pem;
  if (!readPem(chainFile, pem)) return 1;
  // PEM to DER only: verifyChain is the one place that interprets certificates, as it does for the
  // DER netd receives in a handshake.
  std::vector<std::string> chain;
  for (const auto& der : capnet::pemCertificates(pem)) chain.emplace_back(der.begin(), der.end());
  auto r = capnet::verifyChain(chain, store.list(), policy);
  if (!r.ok()) {
    std::printf("deny reason=%s detail=\"%s\"\n", std::string(capnet::verifyFailureName(r.code())).c_str(), r.message().c_str());
    return 1;
  }
  std::printf("accept leaf-sha256=%s spki-sha256=%s%s%s\n", capnet::hexFingerprint(r->leafSha256).c_str(), capnet::pinBase64(r->spkiSha256).c_str(),
              r->pinsSkipped ? " pins=expired-skipped" : "", r->datesIgnored ? " time-policy=ignore-validity" : "");
  return 0;
}

}  // namespace

constexpr const char* kUsage =
    "usage: trustctl [--state DIR] [--pkg DIR] list | add FILE.pem | rm FINGERPRINT\n"
    "       trustctl --image STATE.img list | add FILE.pem | rm FINGERPRINT\n"
    "       trustctl pin FILE.pem\n"
    "       trustctl [--state DIR] [--pkg DIR] verify --chain PEM --host NAME [--at YYYY-MM-DD]\n"
    "                [--pin BASE64-SPKI-SHA256]... [--pins-expire YYYY-MM-DD] [--time-policy enforce|ignore-validity]\n"
    "exit: 0 done, 1 refused, 2 usage\n";

int main(int argc, char** argv) {
  if (int rc = capnet::cli::standardFlags(argc, argv, "trustctl", kUsage); rc >= 0) return rc;
  wolfSSL_Init();   // the library's tables (key types, OIDs) before any certificate is parsed
  capnet::Roots roots;
  std::string image;
  int i = 1;
  for (; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--state") roots.state = argv[i + 1];
    else if (a == "--pkg") roots.pkg = argv[i + 1];
    else if (a == "--image") image = argv[i + 1];
    else break;
  }
  // An image: copy its installed roots out, work on the copy with the same code, write back the change.
  std::string scratch;
  if (!image.empty()) {
    char t[] = "/tmp/trustctl-XXXXXX";
    if (mkdtemp(t) == nullptr) return 1;
    scratch = t;
    roots.state = scratch + "/state";
    std::string dir = roots.state + "/trust";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    debugfs({"-R", "rdump /trust/installed " + dir, image});   // absent on a fresh image: fine
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  } cleanup{scratch};
  if (i >= argc) {
    std::fprintf(stderr, "usage: trustctl [--state DIR] [--pkg DIR] list | add FILE.pem | rm FINGERPRINT | pin FILE.pem | verify ...\n");
    return 2;
  }
  std::string cmd = argv[i];
  if (cmd == "pin" && i + 2 == argc) {
    // The RFC 7469 pin of every certificate in a PEM file: base64 SHA-256 of its DER
    // SubjectPublicKeyInfo, the value `openssl x509 -pubkey -noout | openssl pkey -pubin -outform
    // der | openssl dgst -sha256 -binary | base64` prints.
    std::string pem;
    if (!readPem(argv[i + 1], pem)) return 1;
    int printed = 0;
    for (const auto& der : capnet::pemCertificates(pem)) {
      auto cert = capnet::parseCert(der);
      auto pin = capnet::spkiSha256(der);
      if (!cert || !pin) continue;
      std::printf("%s %s\n", capnet::pinBase64(*pin).c_str(), cert->subject.c_str());
      ++printed;
    }
    if (printed == 0) {
      std::fprintf(stderr, "trustctl: %s holds no certificate\n", argv[i + 1]);
      return 1;
    }
    return 0;
  }
  capnet::TrustStore store(roots);
  if (cmd == "list" && i + 1 == argc) {
    std::vector<std::string> problems;
    for (const auto& r : store.list(&problems)) {
      std::printf("%s %-5s %s notAfter=%s\n", capnet::hexFingerprint(r.sha256).c_str(), r.origin.c_str(), r.subject.c_str(),
                  r.notAfter.c_str());
    }
    for (const auto& p : problems) std::printf("skipped: %s\n", p.c_str());
    return 0;
  }
  if (cmd == "add" && i + 2 == argc) {
    std::string pem;
    if (!readPem(argv[i + 1], pem)) return 1;
    auto r = store.add(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pem.data()), pem.size()),
                       static_cast<int64_t>(::time(nullptr)) * 1000);
    if (!r.ok()) {
      std::printf("refused: %s\n", r.message().c_str());
      return 1;
    }
    if (!image.empty()) {
      debugfs({"-w", "-R", "mkdir /trust", image});
      debugfs({"-w", "-R", "mkdir /trust/installed", image});
      std::string name = capnet::hexFingerprint(r->sha256) + ".pem";
      if (!debugfs({"-w", "-R", "write " + r->path + " /trust/installed/" + name, image})) {
        std::printf("refused: cannot write into %s\n", image.c_str());
        return 1;
      }
    }
    std::printf("added %s %s\n", capnet::hexFingerprint(r->sha256).c_str(), r->subject.c_str());
    return 0;
  }
  if (cmd == "verify") return verify(store, argc, argv, i + 1);
  if (cmd == "rm" && i + 2 == argc) {
    auto r = store.remove(argv[i + 1]);
    if (!r.ok()) {
      std::printf("refused: %s\n", r.message().c_str());
      return 1;
    }
    if (!image.empty() && !debugfs({"-w", "-R", std::string("rm /trust/installed/") + argv[i + 1] + ".pem", image})) {
      std::printf("refused: cannot remove from %s\n", image.c_str());
      return 1;
    }
    std::printf("removed %s\n", argv[i + 1]);
    return 0;
  }
  std::fprintf(stderr, "usage: trustctl [--state DIR] [--pkg DIR] list | add FILE.pem | rm FINGERPRINT\n");
  return 2;
}

// A TLS server's bytes into netd's TLS client (netd/tls/wolf-tls.cpp: WolfTlsWrapper::wrap, the
// TlsConnection handshake over wolfSSL's I/O callbacks, the post-handshake verifyChain policy, then
// TlsConnection::read of application data). The inner TcpConnection is in memory: it hands the
// client the input as the server's bytes and swallows what the client writes. After a handshake
// that succeeds, the client sends one HTTP request and reads to EOF, as the fixture test does.
//
// Determinism: wolfSSL seeds its DRBG through wc_GenerateSeed, which this target defines (a fixed
// pattern), so every WOLFSSL gets the same client random and key shares on every run. A recorded
// server flight therefore replays byte for byte: the seeds under fuzz/corpus/tls/ complete real
// TLS 1.3 and 1.2 handshakes (certificate chain, CertificateVerify, Finished, application data)
// and the fuzzer mutates from there. The trust root is embedded below (the test PKI's CA the seeds
// were recorded with), and the clock is pinned at 2026-06-01.
//
// Input: byte 0 = options (bit 0 grant's minimum version TLS 1.2, else 1.3; bit 1 certificate
// time policy ignore-validity; bits 4-7 n: the server's bytes arrive n*61 at a time, 0 = as much
// as the client asks for); the rest is everything the server sends.
//
// Recording a seed (the server: selftest's tls-fixture with a certificate of the test PKI):
//   FUZZ_TLS_RECORD=OUT FUZZ_TLS_FIXTURE=build/selftest/tls-fixture FUZZ_TLS_CERT=DIR/good \
//     [FUZZ_TLS_OPTIONS=1] build-fuzz/fuzz/fuzz-tls
// runs one handshake against the fixture over a socket pair and writes the options byte and
// every byte the fixture sent to OUT, then exits.
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#include <kj/async-io.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <variant>

#include "common/audit.h"
#include "fuzz/fuzz-world.h"
#include "netd/tls/wolf-tls.h"
#include "tests/support/netd-control.h"
#include "tests/support/stream-connection.h"

// wolfSSL's entropy source, replaced for this process: a fixed seed (see above).
extern "C" int wc_GenerateSeed(OS_Seed*, byte* seed, word32 sz) {
  for (word32 i = 0; i < sz; ++i) seed[i] = static_cast<byte>(0x5a ^ (i * 31 + 7));
  return 0;
}

namespace {

constexpr int64_t kGuestNow = 1780272000000LL;   // 2026-06-01T00:00:00Z

// The test PKI's root (selftest/fixtures/tls/gen-certs.sh) the seeds were recorded against.
constexpr const char* kRootPem = R"(
-----BEGIN CERTIFICATE-----
MIIC9DCCAdygAwIBAgICEAAwDQYJKoZIhvcNAQELBQAwGzEZMBcGA1UEAwwQY2Fw
bmV0IHRlc3Qgcm9vdDAeFw0yNjAxMDEwMDAwMDBaFw0zNjAxMDEwMDAwMDBaMBsx
GTAXBgNVBAMMEGNhcG5ldCB0ZXN0IHJvb3QwggEiMA0GCSqGSIb3DQEBAQUAA4IB
DwAwggEKAoIBAQC6TB4u5M8smF8giyoNTAqXeN4kyCjxttcMpa1RJZnoNdBr320Z
4T5dIHKTql5zhxy8LUo28J5BIDHduvbY/TEK8ezeQUxoNwTBtjnMHdEf+pXCEK+K
YOLFk0w3Ay1/GFM1gz5IwZNpQnVPSYzUVkqDVJBMWYSlCr1YAjX8vun0ssnkMgTW
bD1Nzh5EGgjs2CBx/tvTbbg3d1YKwFSYZsWi8VCx9KbgryUwuRTSSupq/eGyTGX/
LRCTUbbOpMgoODD8VdP94rjn2FlwlY4DmnQZiatzKhP3Dv+YSzOROp8bNay0eKOg
zowm4ZS+x/8XRVQeRXBeCvmDHkontSHujzEjAgMBAAGjQjBAMA8GA1UdEwEB/wQF
MAMBAf8wDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBQYppHrSF05/Kdxc5CBNQEn
DVdYqTANBgkqhkiG9w0BAQsFAAOCAQEAA2Ge6QOj4SXZvDrGRZic0gfxew+M3L9W
SlDxWdWiGcgGOCxz5WyejGqdpNc4hpIUz12j79JemXxqvegrTnhqJnvtiXlloXSF
FhkjAKbDIhIp8EURQ6FOlpPy1LclPE6ZMgH687GipnI4Hmt71B2j3DpAzXueFmf5
jUzMpUzYZsjQL56qGrz5h5OkJvnaEDgQqwIPcUFQmiqEc9Lon8AfaQ2yuY1n/uS5
HIFbI7+WEqVKl+71WiU2iZPKIoUxVTIoOHfjnS4GSSqiZwHM0eV9cFz0On9N3jNx
LdYGLW7uvUTiYqDturS34KGhWJp7XHVWf1NBaNCsiQYV9TtA+2keeA==
-----END CERTIFICATE-----
)";

// The server's side: the input, handed out `chunk` bytes at a time (0: as much as asked), then EOF.
class ReplayConnection final : public capnet::TcpConnection {
 public:
  ReplayConnection(const uint8_t* data, size_t size, size_t chunk) : data_(data), size_(size), chunk_(chunk) {}
  ~ReplayConnection() noexcept override {}
  kj::Promise<capnet::ReadResult> read(size_t maxBytes) override {
    if (off_ >= size_ || maxBytes == 0) return capnet::ReadResult{kj::heapArray<kj::byte>(0), true};
    size_t n = std::min(maxBytes, size_ - off_);
    if (chunk_ != 0) n = std::min(n, chunk_);
    auto out = kj::heapArray<kj::byte>(data_ + off_, n);
    off_ += n;
    return capnet::ReadResult{kj::mv(out), false};
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::byte>) override { return kj::READY_NOW; }
  kj::Promise<void> shutdownWrite() override { return kj::READY_NOW; }
  uint16_t localPort() const override { return 40000; }

 private:
  const uint8_t* data_;
  size_t size_, chunk_, off_ = 0;
};

// Recording: a real server over a socket pair; what it sends is kept.

struct World {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  capnet::FakeClock clock{kGuestNow};
  std::string dir;
  kj::Own<capnet::WolfTlsWrapper> tls;
  World() {
    char t[] = "/tmp/fuzz-tls-XXXXXX";
    dir = ::mkdtemp(t);
    std::filesystem::create_directories(dir + "/pkg/trust");
    std::filesystem::create_directories(dir + "/state/trust/installed");
    std::ofstream(dir + "/pkg/trust/root.pem") << kRootPem;
    tls = kj::heap<capnet::WolfTlsWrapper>(io.provider->getTimer(), clock, capnet::Roots{dir + "/pkg", dir + "/state"});
  }

  // One handshake, then (if it succeeded) one request and the response to EOF.
  void session(kj::Own<capnet::TcpConnection> inner, uint8_t options) {
    auto grant = capnet::testing::testGrant(0x42, 2000, "tls");
    grant.host = "devnet.test";
    grant.port = 443;
    grant.tls12 = (options & 1) != 0;
    grant.ignoreValidity = (options & 2) != 0;
    auto record = grant.message();
    auto r = tls->wrap(kj::mv(inner), capnet::grantOf(*record), "devnet.test").wait(io.waitScope);
    auto* s = std::get_if<capnet::TlsSession>(&r);
    if (::getenv("FUZZ_AUDIT") != nullptr) {   // how far the input got
      if (s != nullptr) std::fprintf(stderr, "fuzz-tls: session %s %s\n", s->version.c_str(), s->cipherSuite.c_str());
      else std::fprintf(stderr, "fuzz-tls: refused %s\n", std::get<capnet::TlsFailure>(r).detail.c_str());
    }
    if (s == nullptr) return;
    static const char kRequest[] = "GET / HTTP/1.1\r\nHost: devnet.test\r\n\r\n";
    auto& conn = *s->connection;
    conn.write(kj::arrayPtr(reinterpret_cast<const kj::byte*>(kRequest), sizeof(kRequest) - 1))
        .then([&conn]() { return readAll(conn, 0); }, [](kj::Exception&&) {})
        .then([]() {}, [](kj::Exception&&) {})
        .wait(io.waitScope);
  }
  static kj::Promise<void> readAll(capnet::TcpConnection& c, int reads) {
    if (reads > 256) return kj::READY_NOW;
    return c.read(4096).then([&c, reads](capnet::ReadResult r) -> kj::Promise<void> {
      if (r.eof) return kj::READY_NOW;
      if (::getenv("FUZZ_AUDIT") != nullptr) std::fprintf(stderr, "fuzz-tls: read %zu bytes\n", r.data.size());
      return readAll(c, reads + 1);
    });
  }
};

World* gWorld = nullptr;

void record(World& w, const char* out, const char* fixture, const std::string& cert, uint8_t options) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::exit(1);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(sv[1], 0);
    ::dup2(sv[1], 1);
    std::string log = w.dir + "/fixture.log";
    if (options & 1) {
      ::execl(fixture, fixture, "--cert", cert.c_str(), "--nonce", "fuzz", "--log", log.c_str(), "--tls12-only", nullptr);
    }
    ::execl(fixture, fixture, "--cert", cert.c_str(), "--nonce", "fuzz", "--log", log.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(sv[1]);
  std::string sent;
  auto stream = w.io.lowLevelProvider->wrapSocketFd(sv[0], kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
  w.session(kj::heap<capnet::testing::StreamConnection>(kj::mv(stream), &sent), options);
  ::waitpid(pid, nullptr, 0);
  std::ofstream(out, std::ios::binary) << static_cast<char>(options) << sent;
  std::fprintf(stderr, "fuzz-tls: recorded %zu server bytes into %s\n", sent.size(), out);
  std::exit(0);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gWorld = new World();
  // wolfSSL draws from the RNG differently the first time it makes a key (its ECC caches warm up):
  // one handshake attempt per version first, so every input (and every recording) sees the same
  // process state.
  static const uint8_t kNothing[1] = {0};
  gWorld->session(kj::heap<ReplayConnection>(kNothing, 0, 0), 0);
  gWorld->session(kj::heap<ReplayConnection>(kNothing, 0, 0), 1);
  capnet::fuzz::quietAudit();
  if (const char* out = ::getenv("FUZZ_TLS_RECORD")) {
    const char* fixture = ::getenv("FUZZ_TLS_FIXTURE");
    const char* cert = ::getenv("FUZZ_TLS_CERT");
    const char* opts = ::getenv("FUZZ_TLS_OPTIONS");
    if (fixture == nullptr || cert == nullptr) std::exit(2);
    record(*gWorld, out, fixture, cert, static_cast<uint8_t>(opts ? std::atoi(opts) : 0));
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t options = data[0];
  const size_t chunk = static_cast<size_t>(options >> 4) * 61;
  gWorld->session(kj::heap<ReplayConnection>(data + 1, size - 1, chunk), options);
  return 0;
}

// netd's TLS client against the real tls-fixture program (a wolfSSL server) over a socket pair,
// with the guest's clock pinned at 2026-06-01 and the test PKI the build generates.
#include <doctest/doctest.h>

#include "tests/support/temp-dir.h"
#include <kj/async-io.h>
#include <kj/encoding.h>
#include <malloc.h>
#if defined(__SANITIZE_ADDRESS__)
extern "C" size_t __sanitizer_get_current_allocated_bytes();   // libasan's (sanitizer/allocator_interface.h)
#endif
#include <sys/socket.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "common/audit.h"
#include "tests/support/netd-control.h"
#include "tests/support/stream-connection.h"
#include "tests/support/wait.h"
#include "idl/names.h"
#include "netd/tls/wolf-tls.h"

using namespace capnet;

namespace {

constexpr int64_t kGuestNow = 1780272000000LL;   // 2026-06-01T00:00:00Z

// A TcpConnection over a kj stream (the socket pair's end).
using capnet::testing::StreamConnection;

std::string pki() { return std::string(CAPNET_BUILD_DIR) + "/selftest/tls"; }

struct Fixture {
  pid_t pid = -1;
  int fd = -1;
  std::string log;
  explicit Fixture(const std::string& cert, bool tls12Only = false, bool keyUpdate = false, bool p256Only = false) {
    char t[] = "/tmp/tls-test-log-XXXXXX";
    int lfd = mkstemp(t);
    close(lfd);
    log = t;
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // A forked copy of the test binary until exec: doctest's crash handlers must not report.
      for (int sig : {SIGTERM, SIGSEGV, SIGABRT, SIGINT}) ::signal(sig, SIG_DFL);
      dup2(sv[1], 0);
      dup2(sv[1], 1);
      std::string bin = std::string(CAPNET_BUILD_DIR) + "/selftest/tls-fixture";
      std::string c = pki() + "/" + cert;
      if (tls12Only) {
        execl(bin.c_str(), bin.c_str(), "--cert", c.c_str(), "--nonce", "test", "--log", log.c_str(), "--tls12-only", nullptr);
      }
      if (keyUpdate) {
        execl(bin.c_str(), bin.c_str(), "--cert", c.c_str(), "--nonce", "test", "--log", log.c_str(), "--key-update", nullptr);
      }
      if (p256Only) {
        execl(bin.c_str(), bin.c_str(), "--cert", c.c_str(), "--nonce", "test", "--log", log.c_str(), "--p256-only", nullptr);
      }
      execl(bin.c_str(), bin.c_str(), "--cert", c.c_str(), "--nonce", "test", "--log", log.c_str(), nullptr);
      _exit(127);
    }
    close(sv[1]);
    fd = sv[0];
  }
  ~Fixture() {
    // Our end is closed by now: the fixture sees EOF and exits by itself. Bounded: killed after 5 s.
    if (pid > 0) {
      if (!capnet::testing::waitUntil([&] { return waitpid(pid, nullptr, WNOHANG) != 0; })) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
    unlink(log.c_str());
  }
};

struct Rig {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  FakeClock clock{kGuestNow};
  capnet::testing::TempDir tmp{"tls-roots"};
  std::string roots = tmp.path;
  kj::Own<WolfTlsWrapper> tls;
  Rig() {
    tmp.dir("pkg/trust");
    tmp.dir("state/trust/installed");
    std::ifstream in(pki() + "/ca.pem");
    std::ofstream(roots + "/pkg/trust/root.pem") << in.rdbuf();
    tls = kj::heap<WolfTlsWrapper>(io.provider->getTimer(), clock, Roots{roots + "/pkg", roots + "/state"});
  }

  std::variant<TlsSession, TlsFailure> handshake(const std::string& cert, capnet::testing::TestGrant grant = {}, bool tls12Only = false,
                                                 bool keyUpdate = false, bool p256Only = false) {
    Fixture f(cert, tls12Only, keyUpdate, p256Only);
    auto stream = io.lowLevelProvider->wrapSocketFd(f.fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    grant.host = "devnet.test";
    if (grant.handshakeTimeoutMs == 0) grant.handshakeTimeoutMs = 5000;
    auto record = grant.message();
    auto r = tls->wrap(kj::heap<StreamConnection>(kj::mv(stream)), grantOf(*record), "devnet.test").wait(io.waitScope);
    if (auto* s = std::get_if<TlsSession>(&r)) {
      // Speak HTTP through it, so the session is proven usable.
      std::string req = "GET / HTTP/1.1\r\nHost: devnet.test\r\n\r\n";
      s->connection->write(kj::arrayPtr(reinterpret_cast<const kj::byte*>(req.data()), req.size())).wait(io.waitScope);
      std::string got;
      for (;;) {
        auto chunk = s->connection->read(4096).wait(io.waitScope);
        if (chunk.eof) break;
        got.append(reinterpret_cast<const char*>(chunk.data.begin()), chunk.data.size());
      }
      CHECK(got.find("capnet devnet fixture over TLS") != std::string::npos);
    }
    return r;
  }
};

idl::ConnectRefusal reasonOf(const std::variant<TlsSession, TlsFailure>& r) {
  auto* f = std::get_if<TlsFailure>(&r);
  return f ? f->reason : idl::ConnectRefusal::INTERNAL;
}

}  // namespace

TEST_CASE("TLS 1.3 with a good certificate: verified, usable, version, cipher and leaf fingerprint reported") {
  Rig rig;
  auto r = rig.handshake("good");
  REQUIRE(std::holds_alternative<TlsSession>(r));
  auto& s = std::get<TlsSession>(r);
  CHECK(s.version == "TLSv1.3");
  CHECK_FALSE(s.cipherSuite.empty());
  CHECK(s.keyExchange == "X25519");   // offered first (wolfSSL's default would be P-256)
  CHECK(s.leafSha256 != std::array<uint8_t, 32>{});
}

TEST_CASE("a server that changes its traffic keys after the handshake (TLS 1.3 KeyUpdate) is followed: the answer arrives") {
  Rig rig;
  auto r = rig.handshake("good", {}, false, /*keyUpdate=*/true);   // handshake() reads the whole answer
  REQUIRE(std::holds_alternative<TlsSession>(r));
}

namespace {

// An inner connection that checks the TcpConnection contract's "one write at a time": it counts the
// writes in flight, and once `meddle` is set holds each finished write for 300 ms and hands reads
// over in 64-byte pieces (so a read waits between records while a write is still out).
class OneWriterCheck final : public TcpConnection {
 public:
  OneWriterCheck(kj::Own<TcpConnection> inner, kj::Timer& timer) : inner_(kj::mv(inner)), timer_(timer) {}
  ~OneWriterCheck() noexcept override {}
  kj::Promise<ReadResult> read(size_t maxBytes) override { return inner_->read(meddle ? std::min<size_t>(maxBytes, 64) : maxBytes); }
  kj::Promise<void> write(kj::ArrayPtr<const kj::byte> data) override {
    maxInFlight = std::max(maxInFlight, ++inFlight);
    if (++writes >= failFrom) {   // this write is lost: the peer sees none of its bytes
      --inFlight;
      return KJ_EXCEPTION(DISCONNECTED, "test: write failed");
    }
    auto p = inner_->write(data);
    if (meddle) p = p.then([this]() { return timer_.afterDelay(300 * kj::MILLISECONDS); });
    return p.then([this]() { --inFlight; });
  }
  kj::Promise<void> shutdownWrite() override { return inner_->shutdownWrite(); }
  uint16_t localPort() const override { return inner_->localPort(); }

  bool meddle = false;
  int failFrom = INT_MAX;   // the first write (counted from 1) that fails, and every one after it
  int inFlight = 0, maxInFlight = 0, writes = 0;

 private:
  kj::Own<TcpConnection> inner_;
  kj::Timer& timer_;
};

// A session with the KeyUpdate fixture over a OneWriterCheck (`seen`): `write` sends the request
// (the caller decides whether to wait for it), `readAnswer` reads to EOF. Members go in reverse
// order: the session closes before the fixture is waited for.
struct KeyUpdateExchange {
  Rig& rig;
  Fixture f{"good", false, /*keyUpdate=*/true};
  std::variant<TlsSession, TlsFailure> r;
  OneWriterCheck* seen = nullptr;
  const std::string req = "GET / HTTP/1.1\r\nHost: devnet.test\r\n\r\n";

  explicit KeyUpdateExchange(Rig& rig) : rig(rig) {
    auto stream = rig.io.lowLevelProvider->wrapSocketFd(f.fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    capnet::testing::TestGrant grant;
    grant.host = "devnet.test";
    grant.handshakeTimeoutMs = 5000;
    auto record = grant.message();
    auto check = kj::heap<OneWriterCheck>(kj::heap<StreamConnection>(kj::mv(stream)), rig.io.provider->getTimer());
    seen = check.get();
    r = rig.tls->wrap(kj::mv(check), grantOf(*record), "devnet.test").wait(rig.io.waitScope);
  }
  TlsSession* session() { return std::get_if<TlsSession>(&r); }
  kj::Promise<void> write() { return session()->connection->write(kj::arrayPtr(reinterpret_cast<const kj::byte*>(req.data()), req.size())); }
  std::string readAnswer() {
    std::string got;
    for (;;) {
      auto chunk = session()->connection->read(4096).wait(rig.io.waitScope);
      if (chunk.eof) return got;
      got.append(reinterpret_cast<const char*>(chunk.data.begin()), chunk.data.size());
    }
  }
};

}  // namespace

TEST_CASE("a KeyUpdate's reply, sent by a read while the request's write is still out, waits for it: one write at a time") {
  // The read that follows a KeyUpdate has a record of its own to send (the reply) while the
  // write of the request still waits for the peer; two inner writes at once could interleave
  // their records' bytes. The fixture closes after its answer, so the reply's write may fail
  // (EPIPE): that failure is the next write's, and the read still gets the whole answer.
  Rig rig;
  KeyUpdateExchange x(rig);
  REQUIRE(x.session() != nullptr);
  auto* seen = x.seen;
  seen->meddle = true;
  const int before = seen->writes;
  auto written = x.write();
  std::string got = x.readAnswer();
  written.wait(rig.io.waitScope);
  CHECK(got.find("capnet devnet fixture over TLS") != std::string::npos);
  CHECK(seen->writes - before >= 2);   // the request, then the KeyUpdate's reply: the case was reached
  CHECK(seen->maxInFlight == 1);
  x.session()->connection = nullptr;
}

TEST_CASE("a KeyUpdate's reply that cannot be sent does not fail the read: the answer arrives, the next write fails, nothing follows the lost record") {
  Rig rig;
  KeyUpdateExchange x(rig);
  REQUIRE(x.session() != nullptr);
  auto* seen = x.seen;
  seen->meddle = true;                  // reads in 64-byte pieces: the reply is sent while reading
  seen->failFrom = seen->writes + 2;    // the request goes out, the KeyUpdate's reply is lost
  x.write().wait(rig.io.waitScope);
  std::string got = x.readAnswer();
  CHECK(got.find("capnet devnet fixture over TLS") != std::string::npos);
  const int attempted = seen->writes;
  CHECK(attempted == seen->failFrom);   // the reply's write was tried (and lost)
  CHECK_THROWS_AS(x.write().wait(rig.io.waitScope), kj::Exception);
  CHECK(seen->writes == attempted);     // no record after the lost one reached the connection
  x.session()->connection = nullptr;
}

TEST_CASE("each bad certificate is refused with its own reason") {
  Rig rig;
  CHECK(reasonOf(rig.handshake("expired")) == idl::ConnectRefusal::TLS_EXPIRED);
  CHECK(reasonOf(rig.handshake("notyet")) == idl::ConnectRefusal::TLS_NOT_YET_VALID);
  CHECK(reasonOf(rig.handshake("wronghost")) == idl::ConnectRefusal::TLS_HOSTNAME_MISMATCH);
  CHECK(reasonOf(rig.handshake("untrusted")) == idl::ConnectRefusal::TLS_UNTRUSTED_ISSUER);
}

TEST_CASE("certificates below the web-PKI baseline are refused as policy violations whatever wolfSSL accepts") {
  Rig rig;
  CHECK(reasonOf(rig.handshake("rsa1024")) == idl::ConnectRefusal::TLS_POLICY_VIOLATION);
  CHECK(reasonOf(rig.handshake("sha1")) == idl::ConnectRefusal::TLS_POLICY_VIOLATION);
  CHECK(reasonOf(rig.handshake("nosan")) == idl::ConnectRefusal::TLS_POLICY_VIOLATION);
}

TEST_CASE("a TLS 1.2-only server is refused as version-too-old unless the grant allows 1.2") {
  Rig rig;
  CHECK(reasonOf(rig.handshake("good", capnet::testing::TestGrant{}, true)) == idl::ConnectRefusal::TLS_VERSION_TOO_OLD);
  capnet::testing::TestGrant allow;
  allow.tls12 = true;
  auto r = rig.handshake("good", allow, true);
  REQUIRE(std::holds_alternative<TlsSession>(r));
  CHECK(std::get<TlsSession>(r).version == "TLSv1.2");
}

TEST_CASE("the certificate-time policy follows the grant: ignore-validity accepts an expired certificate, loudly") {
  Rig rig;
  std::vector<std::string> lines;
  setAuditSink([&](const std::string& l) { lines.push_back(l); });
  capnet::testing::TestGrant g;
  g.ignoreValidity = true;
  auto r = rig.handshake("expired", g);
  setAuditSink({});
  CHECK(std::holds_alternative<TlsSession>(r));
  bool warned = false;
  for (auto& l : lines) warned = warned || l.rfind("tls: warn time-policy=ignore-validity host=devnet.test", 0) == 0;
  CHECK(warned);
}

TEST_CASE("pins: a mismatching pin set refuses, an expired pin set is skipped and logged") {
  Rig rig;
  capnet::testing::TestGrant g;
  g.pins.push_back(std::array<uint8_t, 32>{1, 2, 3});
  g.pinsExpireAtMs = kGuestNow + 86400000;
  CHECK(reasonOf(rig.handshake("good", g)) == idl::ConnectRefusal::TLS_PIN_MISMATCH);
  std::vector<std::string> lines;
  setAuditSink([&](const std::string& l) { lines.push_back(l); });
  g.pinsExpireAtMs = kGuestNow - 1;
  auto r = rig.handshake("good", g);
  setAuditSink({});
  CHECK(std::holds_alternative<TlsSession>(r));
  bool logged = false;
  for (auto& l : lines) logged = logged || l.rfind("tls: pins-expired host=devnet.test", 0) == 0;
  CHECK(logged);
}

namespace {
std::array<uint8_t, 32> pinFile(const std::string& name) {
  std::ifstream in(pki() + "/" + name + ".pin");
  std::string b64;
  in >> b64;
  auto bytes = kj::decodeBase64(kj::StringPtr(b64.c_str()));
  std::array<uint8_t, 32> out{};
  REQUIRE(bytes.size() == 32);
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}
}  // namespace

TEST_CASE("pins per RFC 7469: OpenSSL's pin of the leaf, or a backup pin on the issuing CA, is accepted") {
  Rig rig;
  capnet::testing::TestGrant g;
  g.pinsExpireAtMs = kGuestNow + 86400000;
  g.pins.push_back(pinFile("good"));
  CHECK(std::holds_alternative<TlsSession>(rig.handshake("good", g)));
  g.pins = {std::array<uint8_t, 32>{9}, pinFile("ca")};   // a stale pin, and a backup on the CA.
  CHECK(std::holds_alternative<TlsSession>(rig.handshake("good", g)));
  g.pins = {std::array<uint8_t, 32>{9}};
  CHECK(reasonOf(rig.handshake("good", g)) == idl::ConnectRefusal::TLS_PIN_MISMATCH);
}

TEST_CASE("the trust store is parsed once and again only when it changes: an installed root applies next") {
  Rig rig;
  CHECK(std::holds_alternative<TlsSession>(rig.handshake("good")));
  CHECK(std::holds_alternative<TlsSession>(rig.handshake("good")));
  CHECK(rig.tls->rootLoads() == 1);
  CHECK(reasonOf(rig.handshake("persisted")) == idl::ConnectRefusal::TLS_UNTRUSTED_ISSUER);
  CHECK(rig.tls->rootLoads() == 1);
  {   // capd installs a root (a new file in state:/trust/installed/).
    std::ifstream in(pki() + "/persist-root.pem");
    std::ofstream(rig.roots + "/state/trust/installed/persist.pem") << in.rdbuf();
  }
  CHECK(std::holds_alternative<TlsSession>(rig.handshake("persisted")));
  CHECK(rig.tls->rootLoads() == 2);
  CHECK(std::holds_alternative<TlsSession>(rig.handshake("good")));
  CHECK(rig.tls->rootLoads() == 2);
}

TEST_CASE("with no roots in the trust store every handshake is refused as untrusted") {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  FakeClock clock(kGuestNow);
  WolfTlsWrapper tls(io.provider->getTimer(), clock, Roots{"/nonexistent", "/nonexistent"});
  Fixture f("good");
  auto stream = io.lowLevelProvider->wrapSocketFd(f.fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
  capnet::testing::TestGrant g;
  g.handshakeTimeoutMs = 5000;
  auto record = g.message();
  auto r = tls.wrap(kj::heap<StreamConnection>(kj::mv(stream)), grantOf(*record), "devnet.test").wait(io.waitScope);
  CHECK(reasonOf(r) == idl::ConnectRefusal::TLS_UNTRUSTED_ISSUER);
}

namespace {
// Bytes the allocator has handed out and not had back: glibc's count, or ASan's under ASan (whose
// allocator glibc's mallinfo2 does not see).
size_t heapInUse() {
#if defined(__SANITIZE_ADDRESS__)
  return __sanitizer_get_current_allocated_bytes();
#else
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
#endif
}
}  // namespace

TEST_CASE("handshakes leave nothing behind: the heap after twenty more handshakes and closes is what it was after the first") {
  // wolfSSL as Debian builds it (FP_ECC) keeps a fixed-point table (257 points of about 3.2 KB) for
  // each elliptic-curve point it multiplies, up to 15 per thread, and a TLS 1.3 handshake brings
  // points that never come again (the server's key share): unreleased, that grew netd's heap by
  // 0.9 MB per handshake up to 13 MB, and every later handshake freed and zeroed one table more.
  // The server takes P-256 alone (it asks again for it, HelloRetryRequest) and signs with an ECDSA
  // P-256 key: every handshake brings a new point, the server's key share.
  Rig rig;
  auto p256 = [&]() {
    auto r = rig.handshake("ecdsa256", {}, false, false, /*p256Only=*/true);
    auto* s = std::get_if<TlsSession>(&r);
    REQUIRE(s != nullptr);
    CHECK(s->keyExchange == "SECP256R1");
  };
  p256();   // roots loaded, one-time set-up done
  const size_t base = heapInUse();
  for (int i = 0; i < 20; ++i) p256();
  const size_t after = heapInUse();
  MESSAGE("heap in use: " << base << " -> " << after << " bytes");
  CHECK(after < base + 256 * 1024);
}

// ---- Reads: whole answers, nothing lost at the end or before a failure ---------------------------

namespace {

// The inbound side of a connection with one byte flipped at `corruptAt` (counted over everything
// the server sent, the handshake included): a record that will not authenticate.
class CorruptingConnection final : public TcpConnection {
 public:
  CorruptingConnection(kj::Own<TcpConnection> inner, size_t corruptAt) : inner_(kj::mv(inner)), corruptAt_(corruptAt) {}
  ~CorruptingConnection() noexcept override {}
  kj::Promise<ReadResult> read(size_t maxBytes) override {
    return inner_->read(maxBytes).then([this](ReadResult r) {
      if (corruptAt_ >= seen_ && corruptAt_ < seen_ + r.data.size()) r.data[corruptAt_ - seen_] ^= 0x5a;
      seen_ += r.data.size();
      return r;
    });
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::byte> data) override { return inner_->write(data); }
  kj::Promise<void> shutdownWrite() override { return inner_->shutdownWrite(); }
  uint16_t localPort() const override { return inner_->localPort(); }

 private:
  kj::Own<TcpConnection> inner_;
  size_t corruptAt_;
  size_t seen_ = 0;
};

// Once `*whole` is set, reads the inner stream to its end before answering, then serves it in
// slices of the size asked: the last slice holds the last records and the close_notify together,
// whatever the scheduling.
class WholeStreamConnection final : public TcpConnection {
 public:
  WholeStreamConnection(kj::Own<TcpConnection> inner, std::shared_ptr<bool> whole) : inner_(kj::mv(inner)), whole_(kj::mv(whole)) {}
  ~WholeStreamConnection() noexcept override {}
  kj::Promise<ReadResult> read(size_t maxBytes) override {
    if (!*whole_) return inner_->read(maxBytes);
    if (!innerEof_) {
      return inner_->read(65536).then([this, maxBytes](ReadResult r) {
        buffered_.insert(buffered_.end(), r.data.begin(), r.data.end());
        innerEof_ = r.eof;
        return read(maxBytes);
      });
    }
    if (served_ == buffered_.size()) return ReadResult{kj::heapArray<kj::byte>(0), true};
    const size_t n = std::min(maxBytes, buffered_.size() - served_);
    auto out = kj::heapArray<kj::byte>(kj::arrayPtr(buffered_.data() + served_, n));
    served_ += n;
    return ReadResult{kj::mv(out), false};
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::byte> data) override { return inner_->write(data); }
  kj::Promise<void> shutdownWrite() override { return inner_->shutdownWrite(); }
  uint16_t localPort() const override { return inner_->localPort(); }

 private:
  kj::Own<TcpConnection> inner_;
  std::shared_ptr<bool> whole_;
  std::vector<kj::byte> buffered_;
  size_t served_ = 0;
  bool innerEof_ = false;
};

// GET /large (4 MiB of 'x' after the headers, then close_notify) read in 64 KiB asks: the body's
// bytes, the largest answer, and whether the stream ended at EOF or failed.
struct LargeRead {
  size_t body = 0, largest = 0, answers = 0;
  bool allX = true, eof = false, failed = false;
};

LargeRead readLarge(Rig& rig, size_t corruptAt = SIZE_MAX, bool wholeStream = false) {
  LargeRead out;
  Fixture f("good");
  auto stream = rig.io.lowLevelProvider->wrapSocketFd(f.fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
  capnet::testing::TestGrant grant;
  grant.host = "devnet.test";
  grant.handshakeTimeoutMs = 5000;
  auto record = grant.message();
  kj::Own<TcpConnection> conn = kj::heap<StreamConnection>(kj::mv(stream));
  if (corruptAt != SIZE_MAX) conn = kj::heap<CorruptingConnection>(kj::mv(conn), corruptAt);
  auto whole = std::make_shared<bool>(false);
  conn = kj::heap<WholeStreamConnection>(kj::mv(conn), whole);
  auto r = rig.tls->wrap(kj::mv(conn), grantOf(*record), "devnet.test").wait(rig.io.waitScope);
  auto* s = std::get_if<TlsSession>(&r);
  REQUIRE(s != nullptr);
  *whole = wholeStream;   // from here on (after the handshake), if asked
  std::string req = "GET /large HTTP/1.1\r\nHost: devnet.test\r\nConnection: close\r\n\r\n";
  s->connection->write(kj::arrayPtr(reinterpret_cast<const kj::byte*>(req.data()), req.size())).wait(rig.io.waitScope);
  std::string head;
  bool inBody = false;
  for (;;) {
    ReadResult chunk;
    try {
      chunk = s->connection->read(64 * 1024).wait(rig.io.waitScope);
    } catch (const kj::Exception&) {
      out.failed = true;
      break;
    }
    if (chunk.eof) {
      out.eof = true;
      break;
    }
    ++out.answers;
    out.largest = std::max(out.largest, chunk.data.size());
    size_t from = 0;
    if (!inBody) {
      head.append(reinterpret_cast<const char*>(chunk.data.begin()), chunk.data.size());
      auto end = head.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      inBody = true;
      from = chunk.data.size() - (head.size() - end - 4);
    }
    for (size_t i = from; i < chunk.data.size(); ++i) out.allX = out.allX && chunk.data[i] == 'x';
    out.body += chunk.data.size() - from;
  }
  s->connection = nullptr;   // closes our end: the fixture exits.
  return out;
}

}  // namespace

TEST_CASE("a TLS read decrypts every record already received into one answer, and loses nothing at close_notify") {
  Rig rig;
  auto got = readLarge(rig);
  CHECK(got.eof);
  CHECK_FALSE(got.failed);
  CHECK(got.body == (4u << 20));   // every byte, none twice: the answer before close_notify included
  CHECK(got.allX);
  CHECK(got.largest > 16384);      // more than one 16 KiB record per answer...
  CHECK(got.largest <= 65536);     // ...and never more than asked for.
  MESSAGE("answers=" << got.answers << " largest=" << got.largest);
}

TEST_CASE("the last records and the close_notify in one piece: the data is answered first, then EOF") {
  Rig rig;
  auto got = readLarge(rig, SIZE_MAX, /*wholeStream=*/true);
  CHECK(got.eof);
  CHECK_FALSE(got.failed);
  CHECK(got.body == (4u << 20));
  CHECK(got.allX);
}

TEST_CASE("a record that does not authenticate: the plaintext before it is delivered, then the read fails") {
  Rig rig;
  auto got = readLarge(rig, 300000);
  CHECK(got.failed);
  CHECK_FALSE(got.eof);
  CHECK(got.allX);
  // Everything up to the record holding the flipped byte arrives (at most one 16 KiB record and
  // the handshake's few KiB lie between the flip and the last good plaintext), nothing after it.
  CHECK(got.body > 300000 - 16384 - 8192);
  CHECK(got.body < 300000);
}

// ---- One decision: netd's real TLS path and `trustctl verify` agree on every fixture ------------

namespace {

// What `trustctl verify` decides for a fixture chain, as "accept" or the reason name.
std::string trustctlVerdict(const Rig& rig, const std::string& cert, const std::string& extra) {
  std::string cmd = std::string(CAPNET_BUILD_DIR) + "/trust/trustctl --pkg " + rig.roots + "/pkg --state " + rig.roots +
                    "/state verify --chain " + pki() + "/" + cert + ".pem --host devnet.test --at 2026-06-01 " + extra;
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[512];
    while (std::fgets(buf, sizeof(buf), p) != nullptr) out += buf;
    ::pclose(p);
  }
  if (out.rfind("accept", 0) == 0) return "accept";
  auto at = out.find("reason=");
  if (at == std::string::npos) return "unparsed: " + out;
  return out.substr(at + 7, out.find_first_of(" \n", at) - at - 7);
}

// netd's TLS refusal in trustctl's words: the IDL's spelling (idl/names.h) without its "tls-"
// prefix is the verification's own reason name ("tls-expired" -> "expired").
std::string verdictOf(const std::variant<TlsSession, TlsFailure>& r) {
  if (std::holds_alternative<TlsSession>(r)) return "accept";
  std::string name(enumName(std::get<TlsFailure>(r).reason));
  if (name.rfind("tls-", 0) != 0) return "other: " + std::get<TlsFailure>(r).detail;
  return name.substr(4);
}

}  // namespace

TEST_CASE("one decision: netd's handshake and trustctl verify agree on every fixture chain and policy") {
  Rig rig;
  struct Case {
    const char* cert;
    bool ignoreValidity;
    bool pinGood;
    std::string extra;
  } cases[] = {
      {"good", false, false, ""},        {"expired", false, false, ""},   {"notyet", false, false, ""},
      {"wronghost", false, false, ""},   {"untrusted", false, false, ""}, {"rsa1024", false, false, ""},
      {"sha1", false, false, ""},        {"nosan", false, false, ""},     {"persisted", false, false, ""},
      {"expired", true, false, "--time-policy ignore-validity"},
      {"notyet", true, false, "--time-policy ignore-validity"},
      {"good", false, true, ""},
  };
  std::string goodPin;
  {
    std::ifstream in(pki() + "/good.pin");
    in >> goodPin;
  }
  int compared = 0;
  for (const auto& c : cases) {
    capnet::testing::TestGrant g;
    g.ignoreValidity = c.ignoreValidity;
    std::string extra = c.extra;
    if (c.pinGood) {
      g.pins.push_back(pinFile("good"));
      g.pinsExpireAtMs = kGuestNow + 86400000;
      extra += " --pin " + goodPin;
    }
    std::string netd = verdictOf(rig.handshake(c.cert, g));
    std::string trustctl = trustctlVerdict(rig, c.cert, extra);
    CHECK_MESSAGE(netd == trustctl, c.cert << " " << extra << ": netd " << netd << ", trustctl " << trustctl);
    ++compared;
  }
  CHECK(compared == 12);
}

TEST_CASE("chains as real servers send them, RFC 5280 CA rules and key types: netd and trustctl agree with the expected verdict") {
  Rig rig;
  struct Case {
    const char* cert;
    const char* want;
  } cases[] = {
      {"chain-full", "accept"},                // leaf, intermediate
      {"chain-extra", "accept"},               // an unrelated CA sent in between
      {"chain-root", "accept"},                // the root sent too
      {"chain-deep", "accept"},                // two intermediates in order
      {"chain-deep-reversed", "accept"},       // ... and out of order
      {"chain-nointer", "untrusted-issuer"},   // the intermediate missing: no path
      {"chain-nokcs", "policy-violation"},     // an intermediate whose keyUsage lacks keyCertSign
      {"chain-pathlen", "policy-violation"},   // pathLenConstraint 0 with an intermediate below
      {"chain-nc-permitted", "accept"},        // name constraints permitting devnet.test
      {"chain-nc-excluded", "policy-violation"},   // name constraints excluding devnet.test
      {"critext", "policy-violation"},         // an unknown critical extension
      {"ecdsa256", "accept"},
      {"ecdsa384", "accept"},
      {"ed25519", "accept"},                  // an Ed25519 leaf (and an Ed25519 handshake signature)
      {"chain-ed25519", "accept"},            // an Ed25519 intermediate signed the leaf
      {"chain-ecdsa", "accept"},              // a P-384 intermediate signed a P-256 leaf
      {"chain-ip-excluded", "policy-violation"},   // the leaf's IP address is excluded by its CA's constraints
      {"iponly", "hostname-mismatch"},        // an IP-only leaf does not name devnet.test
      {"md5", "policy-violation"},            // MD5withRSA: not an accepted signature algorithm
  };
  for (const auto& c : cases) {
    auto outcome = rig.handshake(c.cert);
    std::string netd = verdictOf(outcome);
    if (auto* f = std::get_if<TlsFailure>(&outcome)) netd += " (" + f->detail + ")";
    if (netd.rfind("accept", 0) != 0 && std::string(c.want) != "accept") netd = verdictOf(outcome);
    std::string trustctl = trustctlVerdict(rig, c.cert, "");
    CHECK_MESSAGE(netd == c.want, std::string(c.cert) << ": netd " << netd << ", want " << std::string(c.want));
    CHECK_MESSAGE(trustctl == c.want, std::string(c.cert) << ": trustctl " << trustctl << ", want " << std::string(c.want));
  }
}

#include <capnp/rpc-twoparty.h>
#include <doctest/doctest.h>

#include "tests/support/temp-dir.h"
#include "tests/support/audit-capture.h"
#include "tests/support/memory-stack.h"
#include <kj/async-io.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "common/audit.h"
#include "common/rpc-server.h"
#include "netd/memory-connection.h"
#include "netd/server/netd-server.h"
#include "netd/server/null-stack.h"
#include "tests/support/netd-control.h"
#include "tests/support/wait.h"

using namespace capnet;

namespace {

// A stack whose peer is an in-memory echo server (or refuses, or never answers).
class FakeStack final : public capnet::testing::MemoryStack {
 public:
  enum Mode { kEcho, kRefuse, kTimeout, kHold } mode = kEcho;
  // kHold: connects wait here until the test resolves them (a slow SYN-ACK).
  std::vector<kj::Own<kj::PromiseFulfiller<Connected>>> held;
  void releaseHeld() {
    for (auto& f : held) f->fulfill(echoPeer());
    held.clear();
  }
  std::vector<std::pair<uint32_t, uint16_t>> connects;
  FakeStack() : MemoryStack("fake") {}

  kj::Promise<Connected> connect(uint32_t a, uint16_t port, uint32_t) override {
    connects.emplace_back(a, port);
    if (mode == kRefuse) return Connected(fail(ConnectError::kRefused, "RST"));
    if (mode == kTimeout) return Connected(fail(ConnectError::kTimeout, "no SYN-ACK"));
    if (mode == kHold) {
      auto paf = kj::newPromiseAndFulfiller<Connected>();
      held.push_back(kj::mv(paf.fulfiller));
      return kj::mv(paf.promise);
    }
    return echoPeer();
  }
};

using Captured = capnet::testing::AuditCapture;

struct TempDir : capnet::testing::TempDir {
  TempDir() : capnet::testing::TempDir("netd-test") {}
};

using capnet::testing::ControlLink;
using capnet::testing::TestGrant;

TestGrant grant(uint8_t seed, uid_t holder, std::string scheme = "tcp", int64_t expires = 60000) {
  return capnet::testing::testGrant(seed, holder, std::move(scheme), expires);
}
capnet::testing::TestAnnouncement ann(bool devnet, uint64_t generation) {
  return capnet::testing::testAnnouncement(devnet, generation);
}

// netd with its control socket, and capd's side of the channel.
struct Rig {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock{1000};
  FakeStack stack;
  Netd netd;
  UnixRpcServer control;
  kj::Own<ControlLink> link;
  kj::Maybe<kj::Promise<void>> serving, linking;

  explicit Rig(uid_t capdUid = getuid())
      : netd(clock, io.provider->getTimer(), stack, capdUid),
        control(*io.provider, "netd", RpcLimits{}, [this](const PeerCredentials& p) { return netd.controlFor(p.uid); }) {
    control.bind(dir.path + "/control.sock", 0600).wait(io.waitScope);
    serving = control.run().eagerlyEvaluate([](kj::Exception&& e) { FAIL(e.getDescription().cStr()); });
  }

  // Connects capd's side and announces devnet.
  void connectCapd(bool devnet) {
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
      link = kj::heap<ControlLink>(*io.provider, dir.path + "/control.sock", io.waitScope);
      linking = link->announce(ann(devnet, 1)).eagerlyEvaluate(nullptr);
    })) {
      (void)e;   // refused at connect: the test checks netd's state.
    }
    settle();
  }
  // Runs the loop for 50 ms: for checks that something does NOT happen, and for calls sent over the
  // socket to reach netd where nothing observable says they have.
  void settle() { capnet::testing::runFor(io, 50 * kj::MILLISECONDS); }
  // Runs the loop until `cond` holds (bounded: 5 s).
  template <typename F>
  bool settleUntil(F cond) { return capnet::testing::runUntil(io, cond); }
  void registerGrant(const TestGrant& g) { REQUIRE(link->registerGrant(g).wait(io.waitScope)); }

  struct Outcome {
    bool connected = false;
    idl::ConnectRefusal reason = idl::ConnectRefusal::INTERNAL;
    kj::Maybe<idl::ByteStream::Client> stream;
    std::string remote;
  };
  Outcome connect(uid_t as, kj::ArrayPtr<const kj::byte> token, std::string host = "devnet.test", uint16_t port = 7,
                  bool tls = false) {
    auto client = netd.netConnectFor(as);
    auto req = client.connectRequest();
    req.setGrant(token);
    req.setHost(host);
    req.setPort(port);
    req.setUseTls(tls);
    auto resp = req.send().wait(io.waitScope);
    Outcome o;
    auto r = resp.getResult();
    if (r.isConnected()) {
      o.connected = true;
      o.stream = r.getConnected().getStream();
      o.remote = r.getConnected().getInfo().getRemoteAddress();
    } else {
      o.reason = r.getRefused().getReason();
    }
    return o;
  }
};

kj::ArrayPtr<const kj::byte> tok(const TestGrant& g) { return g.tokenBytes(); }

}  // namespace

TEST_CASE("devnet off: every connect is refused with devnet-off and the exact marker, grant or not") {
  Rig rig;
  Captured audit;
  rig.connectCapd(false);
  REQUIRE(rig.netd.capdConnected());
  auto g = grant(1, getuid());
  auto o = rig.connect(getuid(), tok(g));
  CHECK_FALSE(o.connected);
  CHECK(o.reason == idl::ConnectRefusal::DEVNET_OFF);
  CHECK(audit.has("net: devnet off deny"));
  CHECK(audit.has("net: connect deny reason=devnet-off"));
  CHECK(rig.stack.connects.empty());
}

TEST_CASE("without a control channel from capd every connect is refused as capd-unreachable") {
  Rig rig;
  Captured audit;
  auto o = rig.connect(getuid(), nullptr);
  CHECK(o.reason == idl::ConnectRefusal::CAPD_UNREACHABLE);
  CHECK(audit.has("net: connect deny reason=capd-unreachable"));
}

TEST_CASE("grant checks: none, forged, another uid's, out of scope, expired, revoked") {
  Rig rig;
  Captured audit;
  rig.connectCapd(true);
  REQUIRE(rig.netd.devnetEnabled());
  auto g = grant(1, getuid());
  rig.registerGrant(g);
  auto other = grant(2, getuid() + 1);
  rig.registerGrant(other);
  auto shortLived = grant(3, getuid(), "tcp", 2000);
  rig.registerGrant(shortLived);
  auto revoked = grant(4, getuid());
  rig.registerGrant(revoked);
  rig.link->revoke(revoked.token).wait(rig.io.waitScope);

  CHECK(rig.connect(getuid(), nullptr).reason == idl::ConnectRefusal::NO_CAP);
  CHECK(audit.has("net: connect deny reason=no-cap"));
  GrantToken forged;
  forged.fill(0xee);
  CHECK(rig.connect(getuid(), kj::arrayPtr(forged.data(), forged.size())).reason == idl::ConnectRefusal::NO_CAP);
  CHECK(rig.connect(getuid(), tok(other)).reason == idl::ConnectRefusal::WRONG_UID);
  CHECK(rig.connect(getuid(), tok(g), "other.test").reason == idl::ConnectRefusal::OUT_OF_SCOPE);
  CHECK(rig.connect(getuid(), tok(g), "devnet.test", 8).reason == idl::ConnectRefusal::OUT_OF_SCOPE);
  CHECK(rig.connect(getuid(), tok(g), "devnet.test", 7, true).reason == idl::ConnectRefusal::OUT_OF_SCOPE);
  rig.clock.set(2000);
  CHECK(rig.connect(getuid(), tok(shortLived)).reason == idl::ConnectRefusal::CAP_EXPIRED);
  CHECK(rig.connect(getuid(), tok(revoked)).reason == idl::ConnectRefusal::CAP_REVOKED);
  CHECK(rig.stack.connects.empty());
  CHECK(audit.has("net: connect deny reason=wrong-uid"));
  CHECK(audit.has("net: connect deny reason=out-of-scope"));
  CHECK(audit.has("net: connect deny reason=cap-expired"));
  CHECK(audit.has("net: connect deny reason=cap-revoked"));
}

TEST_CASE("an allowed connect reaches the grant's address and carries bytes both ways with half-close") {
  Rig rig;
  Captured audit;
  rig.connectCapd(true);
  auto g = grant(1, getuid());
  rig.registerGrant(g);
  auto o = rig.connect(getuid(), tok(g));
  REQUIRE(o.connected);
  CHECK(o.remote == "10.0.2.2");
  REQUIRE(rig.stack.connects.size() == 1);
  CHECK(rig.stack.connects[0] == std::make_pair(0x0a000202u, uint16_t(7)));
  CHECK(audit.has("net: connect allow uid="));
  KJ_IF_MAYBE(s, o.stream) {
    // 200 KiB through a 4 KiB pipe: writes must wait for the echo to be read (flow control).
    std::string payload;
    for (int i = 0; i < 200 * 1024; ++i) payload.push_back(static_cast<char>('a' + i % 26));
    std::string echoed;
    size_t sent = 0;
    while (sent < payload.size() || echoed.size() < payload.size()) {
      if (sent < payload.size()) {
        size_t n = std::min<size_t>(16384, payload.size() - sent);
        auto w = s->writeRequest();
        w.setData(kj::arrayPtr(reinterpret_cast<const kj::byte*>(payload.data() + sent), n));
        auto writing = w.send();
        // Read while the write is pending, as a real client would.
        while (!writing.poll(rig.io.waitScope)) {
          auto r = s->readRequest();
          r.setMaxBytes(65536);
          auto got = r.send().wait(rig.io.waitScope);
          echoed.append(reinterpret_cast<const char*>(got.getData().begin()), got.getData().size());
        }
        writing.wait(rig.io.waitScope);
        sent += n;
      } else {
        auto r = s->readRequest();
        r.setMaxBytes(65536);
        auto got = r.send().wait(rig.io.waitScope);
        REQUIRE_FALSE(got.getEof());
        echoed.append(reinterpret_cast<const char*>(got.getData().begin()), got.getData().size());
      }
    }
    CHECK(echoed == payload);
    s->shutdownWriteRequest().send().wait(rig.io.waitScope);
    auto r = s->readRequest();
    r.setMaxBytes(10);
    CHECK(r.send().wait(rig.io.waitScope).getEof());
    auto big = s->writeRequest();
    big.initData(65537);
    CHECK_THROWS(big.send().wait(rig.io.waitScope));
  } else {
    FAIL("no stream");
  }
}

TEST_CASE("stack failures become typed refusals: connect refused, connect timeout, no OS stack") {
  Rig rig;
  Captured audit;
  rig.connectCapd(true);
  auto g = grant(1, getuid());
  rig.registerGrant(g);
  rig.stack.mode = FakeStack::kRefuse;
  CHECK(rig.connect(getuid(), tok(g)).reason == idl::ConnectRefusal::CONNECT_REFUSED);
  rig.stack.mode = FakeStack::kTimeout;
  CHECK(rig.connect(getuid(), tok(g)).reason == idl::ConnectRefusal::CONNECT_TIMEOUT);
  CHECK(audit.has("net: connect fail reason=connect-timeout"));
  CHECK(rig.connect(getuid(), tok(g), "devnet.test", 7, true).reason == idl::ConnectRefusal::OUT_OF_SCOPE);
  auto tlsGrant = grant(5, getuid(), "tls");
  rig.registerGrant(tlsGrant);
  rig.stack.mode = FakeStack::kEcho;
  auto t = rig.connect(getuid(), tok(tlsGrant), "devnet.test", 7, true);
  CHECK(t.reason == idl::ConnectRefusal::TLS_HANDSHAKE_FAILED);   // no TLS wrapper: never plain.
}

TEST_CASE("with no OS stack a granted connect is refused as no-os-stack") {
  auto io = kj::setupAsyncIo();
  FakeClock clock(0);
  NullStack none("no NIC");
  Netd netd(clock, io.provider->getTimer(), none, getuid());
  Captured audit;
  auto session = netd.controlFor(getuid());
  REQUIRE(session != nullptr);
  netd.announce(capnet::testing::asPolicy(ann(true, 1)));
  auto g = grant(1, getuid());
  capnet::testing::addGrant(netd, g);
  auto req = netd.netConnectFor(getuid()).connectRequest();
  req.setGrant(tok(g));
  req.setHost("devnet.test");
  req.setPort(7);
  auto resp = req.send().wait(io.waitScope);
  auto r = resp.getResult();
  REQUIRE(r.isRefused());
  CHECK(r.getRefused().getReason() == idl::ConnectRefusal::NO_OS_STACK);
  CHECK(std::string(r.getRefused().getDetail().cStr()).find("no NIC") != std::string::npos);
  auto st = netd.netConnectFor(getuid()).statusRequest().send().wait(io.waitScope);
  CHECK_FALSE(st.getStackUp());
  CHECK(std::string(st.getStackDetail().cStr()) == "no NIC");
}

TEST_CASE("when capd's control connection drops netd forgets every grant and denies") {
  Rig rig;
  Captured audit;
  rig.connectCapd(true);
  auto g = grant(1, getuid());
  rig.registerGrant(g);
  CHECK(rig.connect(getuid(), tok(g)).connected);
  rig.linking = nullptr;
  rig.link = nullptr;   // capd goes away.
  CHECK(rig.settleUntil([&] { return !rig.netd.capdConnected(); }));
  CHECK(rig.netd.grants().size() == 0);
  CHECK(audit.has("netd: capd-disconnected revoked=1 state=deny-all"));
  CHECK(rig.connect(getuid(), tok(g)).reason == idl::ConnectRefusal::CAPD_UNREACHABLE);
}

TEST_CASE("devnet announced off revokes every grant at once") {
  Rig rig;
  Captured audit;
  rig.connectCapd(true);
  rig.registerGrant(grant(1, getuid()));
  rig.registerGrant(grant(2, getuid()));
  rig.link->announce(ann(false, 2)).wait(rig.io.waitScope);
  CHECK(rig.netd.grants().size() == 0);
  CHECK(audit.has("netd: devnet state=off generation=2 was=on revoked=2 streams-closed=0"));
}

TEST_CASE("the control socket refuses any uid but capd's") {
  Rig rig(getuid() + 4242);   // netd expects capd at another uid.
  Captured audit;
  rig.connectCapd(true);
  CHECK_FALSE(rig.netd.capdConnected());
  CHECK(audit.has("netd: refuse-control uid=" + std::to_string(getuid()) + " reason=not-capd"));
  CHECK_FALSE(rig.link->registerGrant(grant(1, getuid())).wait(rig.io.waitScope));
}

TEST_CASE("malformed grants from the control channel are refused, not stored") {
  Rig rig;
  Captured audit;
  rig.connectCapd(true);
  auto g = grant(1, getuid());
  g.port = 0;
  CHECK_FALSE(rig.link->registerGrant(g).wait(rig.io.waitScope));
  g = grant(1, getuid(), "gopher");
  CHECK_FALSE(rig.link->registerGrant(g).wait(rig.io.waitScope));
  CHECK(rig.netd.grants().size() == 0);
}

// ---- Hostile holders and revocation ---------------------------------------------------------------

namespace {

// The typed closure a ByteStream call failed with, or INTERNAL when it did not fail that way.
template <typename P>
std::string closure(P&& promise, kj::WaitScope& ws) {
  std::string out = "ok";
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { promise.wait(ws); })) {
    std::string d = e->getDescription().cStr();
    auto at = d.find(kStreamClosedPrefix);
    out = at == std::string::npos ? "error: " + d : d.substr(at + kStreamClosedPrefix.size()).substr(0, d.substr(at + kStreamClosedPrefix.size()).find(' '));
  }
  return out;
}

idl::ByteStream::Client open(Rig& rig, const TestGrant& g) {
  auto o = rig.connect(g.holderUid, tok(g));
  REQUIRE(o.connected);
  KJ_IF_MAYBE(s, o.stream) { return *s; }
  FAIL("no stream");
  return idl::ByteStream::Client(nullptr);
}

}  // namespace

TEST_CASE("read, read, close pipelined on one stream is safe, and calls behind close fail with the typed closure") {
  Rig rig;
  Captured audit;
  rig.connectCapd(true);
  auto g = grant(1, getuid());
  rig.registerGrant(g);
  auto s = open(rig, g);
  // One batch, nothing awaited in between: the calls queue behind each other inside netd.
  auto r1 = s.readRequest();
  r1.setMaxBytes(100);
  auto read1 = r1.send();
  auto r2 = s.readRequest();
  r2.setMaxBytes(100);
  auto read2 = r2.send();
  auto closing = s.closeRequest().send();
  auto w = s.writeRequest();
  w.setData(kj::StringPtr("late").asBytes());
  auto lateWrite = w.send();
  auto lateShutdown = s.shutdownWriteRequest().send();
  auto r3 = s.readRequest();
  r3.setMaxBytes(100);
  auto lateRead = r3.send();
  closing.wait(rig.io.waitScope);
  // The reads queued before close end (EOF from the echo's FIN, or closed); never a crash.
  auto first = closure(kj::mv(read1), rig.io.waitScope);
  CHECK((first == "ok" || first == "closed"));
  auto second = closure(kj::mv(read2), rig.io.waitScope);
  CHECK((second == "ok" || second == "closed"));
  CHECK(closure(kj::mv(lateWrite), rig.io.waitScope) == "closed");
  CHECK(closure(kj::mv(lateShutdown), rig.io.waitScope) == "closed");
  CHECK(closure(kj::mv(lateRead), rig.io.waitScope) == "closed");
  // A second close is harmless.
  s.closeRequest().send().wait(rig.io.waitScope);
  CHECK(rig.settleUntil([&] { return rig.netd.liveStreams() == 0; }));
  CHECK(rig.netd.streamsOf(getuid()) == 0);
}

TEST_CASE("write and shutdownWrite pipelined with close in every order never touch a released connection") {
  Rig rig;
  rig.connectCapd(true);
  auto g = grant(1, getuid());
  rig.registerGrant(g);
  for (int order = 0; order < 6; ++order) {
    auto s = open(rig, g);
    kj::Vector<kj::Promise<void>> calls;
    auto write = [&]() {
      auto w = s.writeRequest();
      w.setData(kj::StringPtr("bytes").asBytes());
      calls.add(w.send().ignoreResult());
    };
    auto shut = [&]() { calls.add(s.shutdownWriteRequest().send().ignoreResult()); };
    auto close = [&]() { calls.add(s.closeRequest().send().ignoreResult()); };
    auto read = [&]() {
      auto r = s.readRequest();
      r.setMaxBytes(10);
      calls.add(r.send().ignoreResult());
    };
    std::vector<std::function<void()>> ops = {write, shut, close, read};
    std::rotate(ops.begin(), ops.begin() + order % 4, ops.end());
    if (order >= 4) std::reverse(ops.begin(), ops.end());
    for (auto& op : ops) op();
    for (auto& c : calls) kj::runCatchingExceptions([&]() { c.wait(rig.io.waitScope); });
    s = nullptr;   // drop with whatever is left.
    rig.settleUntil([&] { return rig.netd.liveStreams() == 0; });
  }
  CHECK(rig.netd.liveStreams() == 0);
  CHECK(rig.netd.streamsOf(getuid()) == 0);
}

TEST_CASE("dropping a stream with reads in flight resets it and frees its slot") {
  Rig rig;
  rig.connectCapd(true);
  auto g = grant(1, getuid());
  rig.registerGrant(g);
  {
    auto s = open(rig, g);
    auto r = s.readRequest();
    r.setMaxBytes(10);
    auto pending = r.send();
    s = nullptr;
    rig.settle();
    CHECK(rig.netd.liveStreams() == 1);   // the call in flight still holds it...
  }                                       // ...until the caller cancels it.
  CHECK(rig.settleUntil([&] { return rig.netd.liveStreams() == 0; }));
  CHECK(rig.netd.streamsOf(getuid()) == 0);
}

TEST_CASE("a read its caller gave up on takes nothing: the bytes that arrive after go to the next read") {
  Rig rig;
  rig.connectCapd(true);
  auto g = grant(1, getuid());
  rig.registerGrant(g);
  auto s = open(rig, g);
  {
    auto r = s.readRequest();
    r.setMaxBytes(100);
    auto pending = r.send();
    rig.settle();   // the read waits inside netd: nothing has arrived
  }                 // dropped: the caller cancels it
  rig.settle();
  auto w = s.writeRequest();
  w.setData(kj::StringPtr("ping").asBytes());
  w.send().wait(rig.io.waitScope);   // the echo peer sends "ping" back
  rig.settle();
  auto r2 = s.readRequest();
  r2.setMaxBytes(100);
  // Bounded: bytes lost to the cancelled read would leave this one waiting forever.
  auto got = rig.io.provider->getTimer().timeoutAfter(5 * kj::SECONDS, r2.send()).wait(rig.io.waitScope);
  CHECK(kj::str(got.getData().asChars()) == "ping");
}

TEST_CASE("reads cancelled in a queue: the one waiting keeps its bytes for the next read, the others take none") {
  Rig rig;
  rig.connectCapd(true);
  auto g = grant(1, getuid());
  rig.registerGrant(g);
  auto s = open(rig, g);
  auto send = [&](const char* text) {
    auto w = s.writeRequest();
    w.setData(kj::StringPtr(text).asBytes());
    w.send().wait(rig.io.waitScope);   // the echo peer sends it back
    rig.settle();
  };
  auto read = [&](uint32_t max) {   // bounded: bytes lost to a cancelled read would hang it
    auto r = s.readRequest();
    r.setMaxBytes(max);
    auto answer = rig.io.provider->getTimer().timeoutAfter(5 * kj::SECONDS, r.send()).wait(rig.io.waitScope);
    return kj::str(answer.getData().asChars());
  };
  {
    kj::Vector<capnp::RemotePromise<idl::ByteStream::ReadResults>> queued;
    for (int i = 0; i < 4; ++i) {
      auto r = s.readRequest();
      r.setMaxBytes(100);
      queued.add(r.send());
    }
    rig.settle();   // the first waits for bytes, three wait for their turn
  }                 // all four cancelled
  rig.settle();
  send("abcdefgh");   // taken by the first cancelled read, which still waited inside the stack
  CHECK(read(3) == "abc");     // a smaller read gets the start of it...
  CHECK(read(100) == "defgh");  // ...and the next the rest: nothing lost, nothing twice
  send("ping");
  CHECK(read(100) == "ping");   // the three cancelled behind it took nothing
}

TEST_CASE("bytes a cancelled read left behind are not handed out once netd closed the stream") {
  Rig rig;
  rig.connectCapd(true);
  auto g = grant(1, getuid());
  rig.registerGrant(g);
  auto s = open(rig, g);
  {
    auto r = s.readRequest();
    r.setMaxBytes(100);
    auto pending = r.send();
    rig.settle();
  }   // cancelled while it waits
  auto w = s.writeRequest();
  w.setData(kj::StringPtr("secret").asBytes());
  w.send().wait(rig.io.waitScope);   // echoed into the cancelled read: left for the next
  rig.settle();
  rig.link->announce(ann(false, 2)).wait(rig.io.waitScope);   // devnet off: the stream is closed
  auto r = s.readRequest();
  r.setMaxBytes(100);
  CHECK(closure(r.send(), rig.io.waitScope) == "devnet-off");
}

TEST_CASE("a holder that pipelines reads without limit is refused past the per-stream queue, not buffered") {
  Rig rig;
  rig.connectCapd(true);
  auto g = grant(1, getuid());
  rig.registerGrant(g);
  auto s = open(rig, g);
  kj::Vector<kj::Promise<capnp::Response<idl::ByteStream::ReadResults>>> reads;
  for (int i = 0; i < 64; ++i) {
    auto r = s.readRequest();
    r.setMaxBytes(1000);
    reads.add(r.send());
  }
  rig.settle();
  int overloaded = 0;
  for (auto& r : reads) {
    if (r.poll(rig.io.waitScope)) {
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { r.wait(rig.io.waitScope); })) {
        overloaded += e->getType() == kj::Exception::Type::OVERLOADED;
      }
    }
  }
  CHECK(overloaded == 64 - static_cast<int>(kMaxQueuedCallsPerStream));
}

TEST_CASE("devnet turned off closes every open stream at once: pending and later calls fail with devnet-off") {
  Rig rig;
  Captured audit;
  rig.connectCapd(true);
  auto g = grant(1, getuid());
  rig.registerGrant(g);
  auto s = open(rig, g);
  auto r = s.readRequest();
  r.setMaxBytes(10);
  auto pending = r.send();
  rig.settle();
  rig.link->announce(ann(false, 2)).wait(rig.io.waitScope);
  CHECK(closure(kj::mv(pending), rig.io.waitScope) == "devnet-off");
  auto w = s.writeRequest();
  w.setData(kj::StringPtr("tunnel").asBytes());
  auto failed = w.send();
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { failed.wait(rig.io.waitScope); })) {
    KJ_IF_MAYBE(reason, streamClosedReason(*e)) {
      CHECK(*reason == idl::ConnectRefusal::DEVNET_OFF);
    } else {
      FAIL("untyped failure: " << e->getDescription().cStr());
    }
  } else {
    FAIL("a write after devnet off succeeded");
  }
  CHECK(audit.has("net: stream closed reason=devnet-off grant=g0 uid=" + std::to_string(getuid())));
  CHECK(audit.has("netd: devnet state=off generation=2 was=on revoked=1 streams-closed=1"));
  CHECK(rig.netd.liveStreams() == 0);
}

TEST_CASE("an explicit revoke closes the streams of that grant only, with cap-revoked") {
  Rig rig;
  Captured audit;
  rig.connectCapd(true);
  auto a = grant(1, getuid());
  a.id = 7;
  auto b = grant(2, getuid());
  b.id = 8;
  rig.registerGrant(a);
  rig.registerGrant(b);
  auto sa = open(rig, a);
  auto sb = open(rig, b);
  rig.link->revoke(a.token).wait(rig.io.waitScope);
  auto ra = sa.readRequest();
  ra.setMaxBytes(1);
  CHECK(closure(ra.send(), rig.io.waitScope) == "cap-revoked");
  auto wb = sb.writeRequest();
  wb.setData(kj::StringPtr("x").asBytes());
  CHECK(closure(wb.send(), rig.io.waitScope) == "ok");
  CHECK(audit.has("net: stream closed reason=cap-revoked grant=g7"));
  CHECK_FALSE(audit.has("net: stream closed reason=cap-revoked grant=g8"));
}

TEST_CASE("losing capd's control session closes every stream with capd-unreachable") {
  Rig rig;
  Captured audit;
  rig.connectCapd(true);
  auto g = grant(1, getuid());
  rig.registerGrant(g);
  auto s = open(rig, g);
  rig.linking = nullptr;
  rig.link = nullptr;
  REQUIRE(rig.settleUntil([&] { return !rig.netd.capdConnected(); }));
  auto r = s.readRequest();
  r.setMaxBytes(1);
  CHECK(closure(r.send(), rig.io.waitScope) == "capd-unreachable");
  CHECK(audit.has("net: stream closed reason=capd-unreachable grant=g0"));
}

TEST_CASE("no stream lives forever: past its grant's expiry plus grants.maxStreamMs it is closed as expired") {
  Rig rig;
  Captured audit;
  rig.connectCapd(true);
  auto a = ann(true, 2);
  a.limits.maxStreamMs = 5000;
  rig.link->announce(a).wait(rig.io.waitScope);
  auto g = grant(1, getuid(), "tcp", 10000);
  rig.registerGrant(g);
  auto s = open(rig, g);
  rig.clock.set(14999);
  rig.netd.sweep();
  CHECK(rig.netd.liveStreams() == 1);
  CHECK(rig.netd.grants().size() == 0);   // the grant itself is swept at expiry.
  rig.clock.set(15000);
  rig.netd.sweep();
  auto r = s.readRequest();
  r.setMaxBytes(1);
  CHECK(closure(r.send(), rig.io.waitScope) == "cap-expired");
  CHECK(audit.has("net: stream closed reason=cap-expired grant=g0"));
}

TEST_CASE("a holder's streams are capped, counting connects still in progress") {
  Rig rig;
  Captured audit;
  rig.connectCapd(true);
  auto a = ann(true, 2);
  a.limits.streamsPerPrincipal = 2;
  rig.link->announce(a).wait(rig.io.waitScope);
  auto g = grant(1, getuid());
  rig.registerGrant(g);
  rig.stack.mode = FakeStack::kHold;
  auto client = rig.netd.netConnectFor(getuid());
  auto connectReq = [&]() {
    auto req = client.connectRequest();
    req.setGrant(tok(g));
    req.setHost("devnet.test");
    req.setPort(7);
    return req.send();
  };
  auto c1 = connectReq();
  auto c2 = connectReq();
  CHECK(rig.settleUntil([&] { return rig.stack.held.size() == 2; }));
  auto third = rig.connect(getuid(), tok(g));
  CHECK(third.reason == idl::ConnectRefusal::TOO_MANY_CONNECTIONS);
  CHECK(audit.has("net: connect deny reason=too-many-connections uid=" + std::to_string(getuid())));
  rig.stack.releaseHeld();
  auto c1resp = c1.wait(rig.io.waitScope);
  auto s1 = c1resp.getResult().getConnected().getStream();
  c2.wait(rig.io.waitScope);
  // Closing one frees its slot for a new connect.
  rig.stack.mode = FakeStack::kEcho;
  s1.closeRequest().send().wait(rig.io.waitScope);
  s1 = nullptr;
  REQUIRE(rig.settleUntil([&] { return rig.netd.liveStreams() == 1; }));
  CHECK(rig.connect(getuid(), tok(g)).connected);
}

TEST_CASE("a grant revoked while its connect is in progress yields no stream") {
  Rig rig;
  Captured audit;
  rig.connectCapd(true);
  auto g = grant(1, getuid());
  rig.registerGrant(g);
  rig.stack.mode = FakeStack::kHold;
  auto req = rig.netd.netConnectFor(getuid()).connectRequest();
  req.setGrant(tok(g));
  req.setHost("devnet.test");
  req.setPort(7);
  auto pending = req.send();
  rig.settle();
  rig.link->revoke(g.token).wait(rig.io.waitScope);
  rig.stack.releaseHeld();
  auto resp = pending.wait(rig.io.waitScope);
  auto r = resp.getResult();
  REQUIRE(r.isRefused());
  CHECK(r.getRefused().getReason() == idl::ConnectRefusal::CAP_REVOKED);
  CHECK(rig.settleUntil([&] { return rig.netd.streamsOf(getuid()) == 0; }));
}

TEST_CASE("a TLS server name other than the grant's host is refused: policy is keyed by the grant") {
  Rig rig;
  Captured audit;
  rig.connectCapd(true);
  auto g = grant(1, getuid(), "tls");
  rig.registerGrant(g);
  auto req = rig.netd.netConnectFor(getuid()).connectRequest();
  req.setGrant(tok(g));
  req.setHost("devnet.test");
  req.setPort(7);
  req.setUseTls(true);
  req.initTls().setServerName("unpinned.example");
  auto resp = req.send().wait(rig.io.waitScope);
  auto r = resp.getResult();
  REQUIRE(r.isRefused());
  CHECK(r.getRefused().getReason() == idl::ConnectRefusal::OUT_OF_SCOPE);
  CHECK(rig.stack.connects.empty());
}

TEST_CASE("netd's gate decides from capd's announced facts: a uid in no policy reaches neither connect nor status") {
  Rig rig;
  Captured audit;
  rig.connectCapd(true);
  uid_t stranger = getuid() + 777;
  CHECK_FALSE(rig.netd.servesApp(stranger));
  CHECK(rig.netd.servesApp(getuid()));
  auto client = rig.netd.netConnectFor(stranger);
  CHECK_THROWS_WITH(client.statusRequest().send().wait(rig.io.waitScope),
                    doctest::Contains("NetConnect.status requires principal"));
  auto req = client.connectRequest();
  req.setHost("devnet.test");
  req.setPort(7);
  CHECK_THROWS_WITH(req.send().wait(rig.io.waitScope), doctest::Contains("NetConnect.connect requires net.tcp.connect"));
  // A principal without net.tcp.connect is refused at the gate too.
  auto a = ann(true, 2);
  a.principals.push_back({stranger, {"net.http.fetch"}});
  rig.link->announce(a).wait(rig.io.waitScope);
  CHECK(rig.netd.servesApp(stranger));
  client.statusRequest().send().wait(rig.io.waitScope);
  auto req2 = client.connectRequest();
  req2.setHost("devnet.test");
  req2.setPort(7);
  CHECK_THROWS_WITH(req2.send().wait(rig.io.waitScope), doctest::Contains("requires net.tcp.connect"));
}

TEST_CASE("between capd's (re)connect and its announcement netd knows no policy: typed capd-unreachable, never a gate refusal") {
  Rig rig;
  Captured audit;
  rig.link = kj::heap<ControlLink>(*rig.io.provider, rig.dir.path + "/control.sock", rig.io.waitScope);
  REQUIRE(rig.settleUntil([&] { return rig.netd.capdConnected(); }));
  CHECK_FALSE(rig.netd.policyKnown());
  // Any local uid may ask for status, and learns why nothing connects.
  auto st = rig.netd.netConnectFor(getuid() + 99).statusRequest().send().wait(rig.io.waitScope);
  CHECK(st.getCapdConnected());
  CHECK(rig.connect(getuid(), nullptr).reason == idl::ConnectRefusal::CAPD_UNREACHABLE);
  rig.link->announce(ann(true, 1)).wait(rig.io.waitScope);
  CHECK(rig.netd.policyKnown());
  CHECK(rig.connect(getuid(), nullptr).reason == idl::ConnectRefusal::NO_CAP);
}

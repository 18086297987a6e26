#include <capnp/rpc-twoparty.h>
#include <doctest/doctest.h>

#include "tests/support/temp-dir.h"
#include "tests/support/audit-capture.h"
#include "tests/support/wait.h"
#include <kj/async-io.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <thread>
#include <variant>

#include "capd/broker.h"
#include <iterator>
#include "common/audit.h"
#include "common/file.h"
#include "common/rpc-server.h"

using namespace capnet;

namespace {

// netd as capd sees it, in memory.
class FakeNetd final : public NetdLink {
 public:
  bool up = true;
  // What netd was asked to register, as plain fields.
  struct Registered {
    GrantToken token{};
    uint64_t id = 0;
    uid_t subjectUid = 0, holderUid = 0;
    std::string scheme, host;
    uint16_t port = 0;
    uint32_t address = 0;
    int64_t expiresAtMs = 0;
  };
  std::vector<Registered> registered;
  std::vector<GrantToken> revoked;
  int revokeAllCalls = 0;
  std::vector<std::pair<bool, uint64_t>> announced;
  bool connected() const override { return up; }
  // When set, the next registration waits until the test fulfils `pending` (a slow netd).
  ~FakeNetd() noexcept override {}
  bool holdNext = false;
  kj::Own<kj::PromiseFulfiller<bool>> pending;
  kj::Promise<bool> registerGrant(idl::Grant::Reader g) override {
    if (!up) return false;
    Registered r;
    toGrantToken(g.getToken(), r.token);
    r.id = g.getId();
    r.subjectUid = g.getSubjectUid();
    r.holderUid = g.getHolderUid();
    r.scheme = g.getScope().getScheme();
    r.host = g.getScope().getHost();
    r.port = g.getScope().getPort();
    r.address = g.getAddress();
    r.expiresAtMs = g.getExpiresAtMs();
    registered.push_back(r);
    if (holdNext) {
      holdNext = false;
      auto paf = kj::newPromiseAndFulfiller<bool>();
      pending = kj::mv(paf.fulfiller);
      return kj::mv(paf.promise);
    }
    return true;
  }
  kj::Promise<void> revoke(const GrantToken& t) override {
    revoked.push_back(t);
    return kj::READY_NOW;
  }
  kj::Promise<void> revokeAll() override {
    ++revokeAllCalls;
    return kj::READY_NOW;
  }
  std::vector<Announcement> announcements;
  kj::Promise<void> announce(const Announcement& a) override {
    announced.emplace_back(a.devnetEnabled, a.generation);
    announcements.push_back(a);
    return kj::READY_NOW;
  }
};

struct TempDir : capnet::testing::TempDir {
  TempDir() : capnet::testing::TempDir("capd-test") {}
};

std::string configJson(bool devnet, uid_t appUid) {
  return std::string(R"({"network": {"devnet": {"enabled": )") + (devnet ? "true" : "false") +
         R"(}, "principals": {"app": {"uid": )" + std::to_string(appUid) +
         R"(, "capabilities": ["net.tcp.connect", "net.dns.resolve", "net.dev.enable"]}},
            "hosts": {"devnet.test": "10.0.2.2"}, "grants": {"lifetimeMs": 60000}}})";
}

using Captured = capnet::testing::AuditCapture;

GrantRequest tcpRequest(uid_t uid) { return GrantRequest{uid, uid, false, "tcp", "devnet.test", 7}; }

// A test principal uid distinct from root: the kernel reports it through SO_PEERCRED.
uid_t testUid() { return getuid() == 0 ? 2000 : getuid(); }

// Connects to `path` from a thread whose (thread-local, raw syscall) credentials are `uid`, so the
// server's SO_PEERCRED sees that uid. Returns the connected fd or -1.
int connectAs(uid_t uid, const std::string& path) {
  int fd = -1;
  std::thread t([&]() {
    if (uid != getuid() && syscall(SYS_setresuid, uid, uid, uid) != 0) return;
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(s);
      return;
    }
    fd = s;
  });
  t.join();
  return fd;
}

}  // namespace

TEST_CASE("a minted grant is registered with netd before the token is returned, bound and scoped") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(1000);
  FakeNetd netd;
  Captured audit;
  Capd capd(clock, netd, {dir.write("n.json", configJson(true, 2000)), ""});
  capd.start();
  auto out = capd.mint(tcpRequest(2000)).wait(io.waitScope);
  REQUIRE(out.granted);
  REQUIRE(netd.registered.size() == 1);
  const auto& g = netd.registered[0];
  CHECK(g.token == out.token);
  CHECK(g.holderUid == 2000);
  CHECK(g.subjectUid == 2000);
  CHECK(g.scheme == "tcp");
  CHECK(g.host == "devnet.test");
  CHECK(g.port == 7);
  CHECK(g.address == 0x0a000202u);
  CHECK(g.expiresAtMs == 61000);
  CHECK(out.expiresAtMs == 61000);
  CHECK(capd.activeGrants() == 1);
  CHECK(audit.has("capd: mint principal=app holder=app scope=tcp://devnet.test:7 grant=g1 expires-ms=61000"));
  auto second = capd.mint(tcpRequest(2000)).wait(io.waitScope);
  CHECK(second.token != out.token);   // fresh randomness per grant.
}

TEST_CASE("devnet off denies the mint with an audit line and registers nothing") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(0);
  FakeNetd netd;
  Captured audit;
  Capd capd(clock, netd, {dir.write("n.json", configJson(false, 2000)), ""});
  capd.start();
  auto out = capd.mint(tcpRequest(2000)).wait(io.waitScope);
  CHECK_FALSE(out.granted);
  CHECK(out.denial == idl::GrantRefusal::DEVNET_OFF);
  CHECK(netd.registered.empty());
  CHECK(audit.has("capd: deny principal=app reason=devnet-off scope=tcp://devnet.test:7"));
}

TEST_CASE("netd unreachable: no grant is handed out") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(0);
  FakeNetd netd;
  netd.up = false;
  Captured audit;
  Capd capd(clock, netd, {dir.write("n.json", configJson(true, 2000)), ""});
  capd.start();
  auto out = capd.mint(tcpRequest(2000)).wait(io.waitScope);
  CHECK_FALSE(out.granted);
  CHECK(out.denial == idl::GrantRefusal::NETD_UNREACHABLE);
  CHECK(audit.has("capd: deny principal=app reason=netd-unreachable"));
}

TEST_CASE("grants expire by the injected clock") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(0);
  FakeNetd netd;
  Captured audit;
  Capd capd(clock, netd, {dir.write("n.json", configJson(true, 2000)), ""});
  capd.start();
  REQUIRE(capd.mint(tcpRequest(2000)).wait(io.waitScope).granted);
  CHECK(capd.activeGrants() == 1);
  clock.set(59999);
  CHECK(capd.activeGrants() == 1);
  clock.set(60000);
  CHECK(capd.activeGrants() == 0);
}

TEST_CASE("a reload that turns devnet off revokes every grant at capd and netd") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(0);
  FakeNetd netd;
  Captured audit;
  std::string path = dir.write("n.json", configJson(true, 2000));
  Capd capd(clock, netd, {path, ""});
  capd.start();
  REQUIRE(capd.mint(tcpRequest(2000)).wait(io.waitScope).granted);
  REQUIRE(capd.mint(tcpRequest(2000)).wait(io.waitScope).granted);
  dir.write("n.json", configJson(false, 2000));
  auto out = capd.reload().wait(io.waitScope);
  CHECK(out.applied);
  CHECK(out.revoked == 2);
  CHECK(capd.activeGrants() == 0);
  CHECK(netd.revokeAllCalls == 1);
  REQUIRE_FALSE(netd.announced.empty());
  CHECK(netd.announced.back().first == false);
  CHECK_FALSE(capd.policy()->devnetEnabled());
  CHECK(audit.has("capd: reload applied=yes"));
}

TEST_CASE("a reload that removes a capability revokes only the grants it no longer allows") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(0);
  FakeNetd netd;
  Captured audit;
  std::string path = dir.write("n.json", configJson(true, 2000));
  Capd capd(clock, netd, {path, ""});
  capd.start();
  auto g = capd.mint(tcpRequest(2000)).wait(io.waitScope);
  REQUIRE(g.granted);
  dir.write("n.json", R"({"network": {"devnet": {"enabled": true}, "principals": {"app": {"uid": 2000}},
                          "hosts": {"devnet.test": "10.0.2.2"}}})");
  auto out = capd.reload().wait(io.waitScope);
  CHECK(out.applied);
  CHECK(out.revoked == 1);
  REQUIRE(netd.revoked.size() == 1);
  CHECK(netd.revoked[0] == g.token);
  CHECK(netd.revokeAllCalls == 0);
}

TEST_CASE("an invalid config on reload changes nothing and reports every problem") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(0);
  FakeNetd netd;
  Captured audit;
  std::string path = dir.write("n.json", configJson(true, 2000));
  Capd capd(clock, netd, {path, ""});
  capd.start();
  REQUIRE(capd.mint(tcpRequest(2000)).wait(io.waitScope).granted);
  auto before = capd.policy();
  dir.write("n.json", R"({"network": {"devnet": {"enabled": false}, "hosts": {"x": "nope"}}})");
  auto out = capd.reload().wait(io.waitScope);
  CHECK_FALSE(out.applied);
  CHECK(out.errors == std::vector<std::string>{R"(network.hosts["x"]: not an IPv4 address)"});
  CHECK(capd.policy() == before);
  CHECK(capd.activeGrants() == 1);
  CHECK(netd.revokeAllCalls == 0);
  CHECK(audit.has("capd: reload applied=no"));
}

TEST_CASE("an invalid config at start-up denies everything with config-invalid, never falls back") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(0);
  FakeNetd netd;
  Captured audit;
  // The state disk's config is broken; the image default would allow nothing either, but capd must
  // not silently pick another file.
  std::string image = dir.write("image.json", configJson(true, 2000));
  std::string state = dir.write("state.json", "{\"network\": {\"devnet\": {\"enabled\": tru");
  Capd capd(clock, netd, {image, state});
  capd.start();
  CHECK_FALSE(capd.policy()->valid());
  CHECK(capd.policy()->source() == state);
  auto out = capd.mint(tcpRequest(2000)).wait(io.waitScope);
  CHECK(out.denial == idl::GrantRefusal::CONFIG_INVALID);
  CHECK(audit.has("capd: config state=invalid"));
  CHECK(audit.has("capd: deny principal=uid:2000 reason=config-invalid"));
}

TEST_CASE("a state config corrupted on disk (bytes, an empty file, a directory) denies everything with its reason") {
  TempDir dir;
  std::string image = dir.write("image.json", configJson(true, 2000));
  std::string garbage("\x00\xff{\"network\"\x01\x02", 12);
  for (const std::string& state : {dir.write("bytes.json", garbage), dir.write("empty.json", ""),
                                   dir.write("half.json", configJson(true, 2000).substr(0, 40))}) {
    auto p = loadPolicy({image, state});
    CHECK_FALSE(p->valid());
    CHECK_FALSE(p->devnetEnabled());
    REQUIRE_FALSE(p->problems().empty());
    GrantRequest r;
    r.callerUid = r.subjectUid = 2000;
    r.scheme = "tcp";
    r.host = "devnet.test";
    r.port = 7;
    CHECK(p->decideGrant(r, 0).denial == idl::GrantRefusal::CONFIG_INVALID);
  }
  ::mkdir((dir.path + "/dir.json").c_str(), 0755);
  auto d = loadPolicy({image, dir.path + "/dir.json"});
  CHECK_FALSE(d->valid());
  REQUIRE_FALSE(d->problems().empty());
}

TEST_CASE("the state disk's config overrides the image default when present") {
  TempDir dir;
  std::string image = dir.write("image.json", configJson(false, 2000));
  std::string state = dir.write("state.json", configJson(true, 2000));
  CHECK(loadPolicy({image, state})->devnetEnabled());
  CHECK_FALSE(loadPolicy({image, dir.path + "/absent.json"})->devnetEnabled());
}

TEST_CASE("identity is the kernel's: SO_PEERCRED over a real Unix socket decides the principal") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(0);
  FakeNetd netd;
  Captured audit;
  const uid_t app = testUid();
  Capd capd(clock, netd, {dir.write("n.json", configJson(true, app)), ""});
  capd.start();
  UnixRpcServer server(*io.provider, "capd", RpcLimits{}, [&](const PeerCredentials& peer) {
    return kj::Maybe<capnp::Capability::Client>(capnp::Capability::Client(capd.brokerFor(peer.uid)));
  });
  std::string sock = dir.path + "/capd.sock";
  server.bind(sock, 0666).wait(io.waitScope);
  auto serving = server.run().eagerlyEvaluate([](kj::Exception&& e) { FAIL(e.getDescription().cStr()); });

  auto ask = [&](uid_t as) {
    int fd = connectAs(as, sock);
    REQUIRE(fd >= 0);
    auto stream = io.lowLevelProvider->wrapSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    capnp::TwoPartyClient client(*stream);
    auto broker = client.bootstrap().castAs<idl::Broker>();
    auto req = broker.requestGrantRequest();
    auto scope = req.initScope();
    scope.setScheme("tcp");
    scope.setHost("devnet.test");
    scope.setPort(7);
    return req.send().then(
        [](capnp::Response<idl::Broker::RequestGrantResults>&& r) {
          return std::string(r.getResult().isGranted() ? "granted" : "refused");
        },
        [](kj::Exception&& e) { return std::string(e.getDescription().cStr()); })
        .wait(io.waitScope);
  };

  CHECK(ask(app) == "granted");
  REQUIRE(netd.registered.size() == 1);
  CHECK(netd.registered[0].holderUid == app);
  if (getuid() == 0) {
    // The same request from another uid (root, which no config can name) is refused by the gate:
    // requestGrant requires net.tcp.connect, and uid 0 holds nothing.
    CHECK(ask(0).find("permission denied: Broker.requestGrant requires net.tcp.connect") != std::string::npos);
    CHECK(ask(2001).find("permission denied") != std::string::npos);
    CHECK(netd.registered.size() == 1);
  }
}

TEST_CASE("hostile Cap'n Proto messages are refused and only that connection is dropped") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(0);
  FakeNetd netd;
  Captured audit;
  const uid_t app = testUid();
  Capd capd(clock, netd, {dir.write("n.json", configJson(true, app)), ""});
  capd.start();
  UnixRpcServer server(*io.provider, "capd", RpcLimits{}, [&](const PeerCredentials& peer) {
    return kj::Maybe<capnp::Capability::Client>(capnp::Capability::Client(capd.brokerFor(peer.uid)));
  });
  std::string sock = dir.path + "/capd.sock";
  server.bind(sock, 0666).wait(io.waitScope);
  auto serving = server.run().eagerlyEvaluate([](kj::Exception&& e) { FAIL(e.getDescription().cStr()); });

  {
    // Over the traversal limit: a 1 MiB host name.
    int fd = connectAs(app, sock);
    REQUIRE(fd >= 0);
    auto stream = io.lowLevelProvider->wrapSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    capnp::TwoPartyClient client(*stream);
    auto broker = client.bootstrap().castAs<idl::Broker>();
    auto req = broker.requestGrantRequest();
    auto scope = req.initScope();
    scope.setScheme("tcp");
    scope.setHost(std::string(1 << 20, 'a'));
    scope.setPort(7);
    bool failed = req.send().then([](auto&&) { return false; }, [](kj::Exception&&) { return true; }).wait(io.waitScope);
    CHECK(failed);
  }
  {
    // Garbage framing: a segment table announcing 2^31 segments.
    int fd = connectAs(app, sock);
    REQUIRE(fd >= 0);
    uint32_t junk[4] = {0x7fffffffu, 0xffffffffu, 0, 0};
    CHECK(write(fd, junk, sizeof(junk)) == static_cast<ssize_t>(sizeof(junk)));
    auto stream = io.lowLevelProvider->wrapSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    char buf[64];
    // The server closes the connection (EOF or reset), it does not crash.
    auto n = stream->tryRead(buf, 1, sizeof(buf)).then([](size_t n) { return n; }, [](kj::Exception&&) { return size_t(0); })
                 .wait(io.waitScope);
    (void)n;
  }
  // The server still serves a well-behaved client.
  int fd = connectAs(app, sock);
  REQUIRE(fd >= 0);
  auto stream = io.lowLevelProvider->wrapSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
  capnp::TwoPartyClient client(*stream);
  auto status = client.bootstrap().castAs<idl::Broker>().statusRequest().send().wait(io.waitScope);
  CHECK(status.getDevnetEnabled());
  CHECK(status.getConfigValid());
}

TEST_CASE("capd --explain style decisions list each rule") {
  TempDir dir;
  auto policy = loadPolicy({dir.write("n.json", configJson(true, 2000)), ""});
  auto d = explainUrl(*policy, 2000, "tcp://devnet.test:7", 0);
  CHECK(d.allowed);
  CHECK(d.rules.size() >= 5);
  auto https = explainUrl(*policy, 2000, "https://devnet.test/", 0);
  CHECK_FALSE(https.allowed);
  CHECK(https.reason == "no-cap (app lacks net.http.fetch)");
}

TEST_CASE("capd --explain reads URLs with fetchd's parser: WHATWG hosts, the parsed URL reported, bad URLs named") {
  TempDir dir;
  auto policy = loadPolicy({dir.write("n.json", configJson(true, 2000)), ""});
  std::optional<Url> parsed;
  auto d = explainUrl(*policy, 2000, "tcp://0x0a.0.2.2:07", 0, &parsed);   // 10.0.2.2 in the standard's hex form
  REQUIRE(parsed.has_value());
  CHECK(parsed->host == "10.0.2.2");
  CHECK(parsed->port == 7);
  std::optional<Url> none;
  auto bad = explainUrl(*policy, 2000, "https://devnet.1/", 0, &none);
  CHECK_FALSE(bad.allowed);
  CHECK_FALSE(none.has_value());
  CHECK(bad.reason == "bad-scope (url host: devnet.1 ends in a number but is not an IPv4 address)");
}

TEST_CASE("a scope host must be in the URL parser's canonical form: no second spelling of an address or a name") {
  TempDir dir;
  auto policy = loadPolicy({dir.write("n.json", configJson(true, 2000)), ""});
  for (const char* host : {"127.1", "0x0a.0.2.2", "Devnet.Test", "devnet.test.", "xn--zz"}) {
    GrantRequest r;
    r.callerUid = r.subjectUid = 2000;
    r.scheme = "tcp";
    r.host = host;
    r.port = 7;
    auto d = policy->decideGrant(r, 0);
    CHECK_MESSAGE(d.denial == idl::GrantRefusal::BAD_SCOPE, host << ": " << d.reason);
  }
}

TEST_CASE("trust management: net.trust.manage installs a root on the state disk, anyone else is refused") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  // The root below is made now, valid for 30 days: installing checks its validity against capd's clock.
  FakeClock clock(static_cast<int64_t>(::time(nullptr)) * 1000 + 60000);
  FakeNetd netd;
  Captured audit;
  const uid_t admin = testUid();
  Capd capd(clock, netd, {dir.write("n.json", std::string(R"({"network": {"principals": {"admin": {"uid": )") +
                                                  std::to_string(admin) +
                                                  R"(, "capabilities": ["net.trust.manage"]}, "app": {"uid": 2001}}}})"),
                          ""});
  capd.setTrustRoots(Roots{dir.path + "/pkg", dir.path + "/state"});
  capd.start();
  std::string pemPath = dir.path + "/root.pem";
  REQUIRE(std::system(("openssl req -x509 -newkey rsa:2048 -nodes -keyout /dev/null -out " + pemPath +
                       " -subj /CN=installed -days 30 -addext basicConstraints=critical,CA:TRUE 2>/dev/null").c_str()) == 0);
  auto read = readFileBounded(pemPath, 1 << 20);
  REQUIRE(read.ok());
  const std::string& pem = read.value();

  auto asAdmin = capd.brokerFor(admin).castAs<idl::TrustManager>();
  auto add = asAdmin.addRequest();
  add.setPem(kj::arrayPtr(reinterpret_cast<const kj::byte*>(pem.data()), pem.size()));
  auto added = add.send().wait(io.waitScope);
  CHECK(added.getAdded());
  CHECK(std::string(added.getRoot().getOrigin().cStr()) == "state");
  CHECK(audit.has("trust: add fingerprint="));
  auto listed = asAdmin.listRequest().send().wait(io.waitScope);
  CHECK(listed.getRoots().size() == 1);

  auto again = asAdmin.addRequest();
  again.setPem(kj::arrayPtr(reinterpret_cast<const kj::byte*>(pem.data()), pem.size()));
  auto dup = again.send().wait(io.waitScope);
  CHECK_FALSE(dup.getAdded());
  CHECK(std::string(dup.getError().cStr()).find("already trusted") != std::string::npos);

  if (getuid() == 0) {
    auto asApp = capd.brokerFor(2001).castAs<idl::TrustManager>();
    auto denied = asApp.addRequest();
    denied.setPem(kj::arrayPtr(reinterpret_cast<const kj::byte*>(pem.data()), pem.size()));
    auto outcome = denied.send().then([](auto&&) { return std::string("added"); },
                                      [](kj::Exception&& e) { return std::string(e.getDescription().cStr()); })
                       .wait(io.waitScope);
    CHECK(outcome.find("permission denied: TrustManager.add requires net.trust.manage") != std::string::npos);
  }
}

// ---- Hostile principals and reload races ----------------------------------------------------------

TEST_CASE("a grant whose mint overlaps a reload that withdraws it is never returned, and netd drops it") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(1000);
  FakeNetd netd;
  Captured audit;
  std::string path = dir.write("n.json", configJson(true, 2000));
  Capd capd(clock, netd, {path, ""});
  capd.start();
  netd.holdNext = true;   // netd answers the registration late...
  auto minting = capd.mint(tcpRequest(2000));
  REQUIRE(capnet::testing::runUntil(io, [&] { return netd.registered.size() == 1; }));
  // ...and meanwhile the policy author takes net.tcp.connect away.
  dir.write("n.json", R"({"network": {"devnet": {"enabled": true}, "principals": {"app": {"uid": 2000,
      "capabilities": ["net.dns.resolve"]}}, "hosts": {"devnet.test": "10.0.2.2"}}})");
  auto reloaded = capd.reload().wait(io.waitScope);
  REQUIRE(reloaded.applied);
  netd.pending->fulfill(true);
  auto out = minting.wait(io.waitScope);
  CHECK_FALSE(out.granted);
  CHECK(out.denial == idl::GrantRefusal::POLICY_CHANGED);
  REQUIRE(netd.revoked.size() == 1);
  CHECK(netd.revoked[0] == netd.registered[0].token);
  CHECK(capd.activeGrants() == 0);
  CHECK(audit.has("capd: deny principal=app reason=policy-changed grant=g1"));
}

TEST_CASE("a mint that overlaps a reload which still allows it on the same terms succeeds") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(1000);
  FakeNetd netd;
  std::string path = dir.write("n.json", configJson(true, 2000));
  Capd capd(clock, netd, {path, ""});
  capd.start();
  netd.holdNext = true;
  auto minting = capd.mint(tcpRequest(2000));
  REQUIRE(capnet::testing::runUntil(io, [&] { return netd.pending.get() != nullptr; }));
  REQUIRE(capd.reload().wait(io.waitScope).applied);   // the same file: nothing withdrawn.
  netd.pending->fulfill(true);
  CHECK(minting.wait(io.waitScope).granted);
  CHECK(netd.revoked.empty());
}

TEST_CASE("a reload that moves a host to another address revokes the grants minted for the old one") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(1000);
  FakeNetd netd;
  Captured audit;
  std::string path = dir.write("n.json", configJson(true, 2000));
  Capd capd(clock, netd, {path, ""});
  capd.start();
  auto out = capd.mint(tcpRequest(2000)).wait(io.waitScope);
  REQUIRE(out.granted);
  std::string moved = configJson(true, 2000);
  moved.replace(moved.find("10.0.2.2"), 8, "10.0.2.9");
  dir.write("n.json", moved);
  auto r = capd.reload().wait(io.waitScope);
  CHECK(r.revoked == 1);
  REQUIRE(netd.revoked.size() == 1);
  CHECK(netd.revoked[0] == out.token);
}

TEST_CASE("one principal cannot hoard grants past network.limits.grantsPerPrincipal") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(1000);
  FakeNetd netd;
  Captured audit;
  std::string json = configJson(true, 2000);
  json.replace(json.find(R"("grants": {"lifetimeMs": 60000})"), 31,
               R"("grants": {"lifetimeMs": 60000}, "limits": {"grantsPerPrincipal": 3})");
  Capd capd(clock, netd, {dir.write("n.json", json), ""});
  capd.start();
  REQUIRE(capd.policy()->valid());
  for (int i = 0; i < 3; ++i) REQUIRE(capd.mint(tcpRequest(2000)).wait(io.waitScope).granted);
  auto fourth = capd.mint(tcpRequest(2000)).wait(io.waitScope);
  CHECK_FALSE(fourth.granted);
  CHECK(fourth.denial == idl::GrantRefusal::TOO_MANY_GRANTS);
  CHECK(audit.has("capd: deny principal=app reason=too-many-grants"));
  CHECK(netd.registered.size() == 3);
  // Expiry frees the principal's budget (no scan of every grant: the oldest expire first).
  clock.set(61000);
  CHECK(capd.mint(tcpRequest(2000)).wait(io.waitScope).granted);
}

TEST_CASE("a uid in no policy gets no bootstrap from capd at all") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(1000);
  FakeNetd netd;
  Captured audit;
  Capd capd(clock, netd, {dir.write("n.json", configJson(true, 2000)), ""});
  capd.start();
  CHECK(capd.connectionFor(4242) == nullptr);
  CHECK(audit.has("capd: refuse-connection reason=not-a-principal uid=4242"));
  CHECK(capd.connectionFor(2000) != nullptr);
}

TEST_CASE("capd announces its principals and limits to netd with the policy") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(1000);
  FakeNetd netd;
  std::string json = configJson(true, 2000);
  json.replace(json.find(R"("grants": {"lifetimeMs": 60000})"), 31,
               R"("grants": {"lifetimeMs": 60000, "maxStreamMs": 1234}, "limits": {"streamsPerPrincipal": 5})");
  Capd capd(clock, netd, {dir.write("n.json", json), ""});
  capd.start();
  REQUIRE(capd.policy()->valid());
  capd.resync().wait(io.waitScope);
  REQUIRE_FALSE(netd.announcements.empty());
  const auto& a = netd.announcements.back();
  CHECK(a.devnetEnabled);
  REQUIRE(a.principals.size() == 1);
  CHECK(a.principals[0].uid == 2000);
  CHECK(a.principals[0].capabilities == std::vector<std::string>{"net.dev.enable", "net.dns.resolve", "net.tcp.connect"});
  CHECK(a.limits.streamsPerPrincipal == 5);
  CHECK(a.limits.maxStreamMs == 1234);
  CHECK(a.limits.connectionsPerUid == 8);   // the default.
}

TEST_CASE("Broker.check carries the policy's fetch limits to fetchd: http, timeouts.totalMs, fetchesPerPrincipal") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(1000);
  FakeNetd netd;
  std::string json = configJson(true, 2000);
  json.replace(json.find(R"("grants": {"lifetimeMs": 60000})"), 31,
               R"("grants": {"lifetimeMs": 60000}, "limits": {"fetchesPerPrincipal": 2},
                  "http": {"redirects": "none", "maxBodyBytes": 1234, "maxHeaderBytes": 2048},
                  "timeouts": {"totalMs": 777})");
  Capd capd(clock, netd, {dir.write("n.json", json), ""});
  capd.start();
  REQUIRE(capd.policy()->valid());
  auto broker = capd.brokerFor(2000);
  auto req = broker.checkRequest();
  req.setSubjectUid(2000);
  req.setCapability("net.tcp.connect");
  // app lacks net.grant.delegate: the gate refuses. Ask as a delegate instead.
  CHECK_THROWS(req.send().wait(io.waitScope));
  const auto& h = capd.policy()->http();
  CHECK(h.maxBodyBytes == 1234);
  CHECK(h.maxHeaderBytes == 2048);
  CHECK(h.maxRedirects == 0);
  CHECK(h.totalMs == 777);
  CHECK(capd.policy()->fetchesPerPrincipal() == 2);
}

// ---- Delegation: a compromised fetchd cannot act for a principal that did not ask ------------------

namespace {
std::string delegationConfig() {
  return R"({"network": {"devnet": {"enabled": true}, "principals": {
      "app": {"uid": 2000, "capabilities": ["net.http.fetch", "net.http.devnet", "net.tls.validate"]},
      "victim": {"uid": 2001, "capabilities": ["net.http.fetch", "net.http.devnet"]},
      "fetchd": {"uid": 1002, "capabilities": ["net.grant.delegate"]},
      "rogue": {"uid": 1003, "capabilities": ["net.grant.delegate"]}},
      "hosts": {"devnet.test": "10.0.2.2", "other.test": "10.0.2.3"}}})";
}
kj::ArrayPtr<const uint8_t> bytes(const GrantToken& t) { return kj::arrayPtr(t.data(), t.size()); }
}  // namespace

TEST_CASE("a delegate redeems the ticket an app asked for: the grant's subject is that app, holder the delegate") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(1000);
  FakeNetd netd;
  Captured audit;
  Capd capd(clock, netd, {dir.write("n.json", delegationConfig()), ""});
  capd.start();
  auto t = capd.issueTicket(2000, "fetchd", "https", "devnet.test", 443);
  REQUIRE(t.issued);
  CHECK(t.expiresAtMs == 1000 + kTicketLifetimeMs);
  CHECK(audit.has("capd: ticket principal=app delegate=fetchd scope=https://devnet.test:443 ticket=t1"));
  auto g = capd.mintDelegated(1002, bytes(t.ticket), "https", "devnet.test", 443).wait(io.waitScope);
  REQUIRE(g.granted);
  REQUIRE(netd.registered.size() == 1);
  CHECK(netd.registered[0].subjectUid == 2000);
  CHECK(netd.registered[0].holderUid == 1002);
  // One-shot: the same ticket never works twice.
  auto again = capd.mintDelegated(1002, bytes(t.ticket), "https", "devnet.test", 443).wait(io.waitScope);
  CHECK_FALSE(again.granted);
  CHECK(again.denial == idl::GrantRefusal::BAD_TICKET);
  CHECK(capd.liveTickets() == 0);
}

TEST_CASE("a compromised delegate cannot get a grant without a ticket, with a forged one, or for another scope") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(1000);
  FakeNetd netd;
  Captured audit;
  Capd capd(clock, netd, {dir.write("n.json", delegationConfig()), ""});
  capd.start();
  // No ticket at all: the victim never asked.
  auto none = capd.mintDelegated(1002, {}, "https", "devnet.test", 443).wait(io.waitScope);
  CHECK(none.denial == idl::GrantRefusal::BAD_TICKET);
  GrantToken forged;
  forged.fill(0x42);
  CHECK(capd.mintDelegated(1002, bytes(forged), "https", "devnet.test", 443).wait(io.waitScope).denial ==
        idl::GrantRefusal::BAD_TICKET);
  // The app asked for devnet.test; fetchd tries to use it for other.test: refused, and consumed.
  auto t = capd.issueTicket(2000, "fetchd", "https", "devnet.test", 443);
  REQUIRE(t.issued);
  auto other = capd.mintDelegated(1002, bytes(t.ticket), "https", "other.test", 443).wait(io.waitScope);
  CHECK(other.denial == idl::GrantRefusal::BAD_TICKET);
  CHECK(capd.mintDelegated(1002, bytes(t.ticket), "https", "devnet.test", 443).wait(io.waitScope).denial ==
        idl::GrantRefusal::BAD_TICKET);
  // A ticket for fetchd is useless to another delegate.
  auto t2 = capd.issueTicket(2000, "fetchd", "https", "devnet.test", 443);
  CHECK(capd.mintDelegated(1003, bytes(t2.ticket), "https", "devnet.test", 443).wait(io.waitScope).denial ==
        idl::GrantRefusal::BAD_TICKET);
  // Tickets expire.
  auto t3 = capd.issueTicket(2000, "fetchd", "https", "devnet.test", 443);
  clock.set(1000 + kTicketLifetimeMs);
  CHECK(capd.mintDelegated(1002, bytes(t3.ticket), "https", "devnet.test", 443).wait(io.waitScope).denial ==
        idl::GrantRefusal::BAD_TICKET);
  CHECK(netd.registered.empty());
  CHECK(audit.has("capd: deny principal=fetchd reason=bad-ticket"));
}

TEST_CASE("tickets name a real delegate, only for http(s), and one principal cannot hoard them") {
  TempDir dir;
  FakeClock clock(1000);
  FakeNetd netd;
  Capd capd(clock, netd, {dir.write("n.json", delegationConfig()), ""});
  capd.start();
  CHECK(capd.issueTicket(2000, "app", "https", "devnet.test", 443).denial == idl::GrantRefusal::BAD_SCOPE);
  CHECK(capd.issueTicket(2000, "nobody", "https", "devnet.test", 443).denial == idl::GrantRefusal::BAD_SCOPE);
  CHECK(capd.issueTicket(2000, "fetchd", "tcp", "devnet.test", 7).denial == idl::GrantRefusal::BAD_SCOPE);
  for (size_t i = 0; i < kTicketsPerPrincipal; ++i) REQUIRE(capd.issueTicket(2000, "fetchd", "https", "devnet.test", 443).issued);
  CHECK(capd.issueTicket(2000, "fetchd", "https", "devnet.test", 443).denial == idl::GrantRefusal::TOO_MANY_GRANTS);
  CHECK(capd.issueTicket(2001, "fetchd", "https", "devnet.test", 443).issued);   // others unaffected.
  clock.set(1000 + kTicketLifetimeMs);
  CHECK(capd.issueTicket(2000, "fetchd", "https", "devnet.test", 443).issued);   // expiry frees the budget.
}

TEST_CASE("over the socket: requestGrantFor takes a ticket, not a uid, and requestTicket needs net.http.fetch") {
  auto io = kj::setupAsyncIo();
  TempDir dir;
  FakeClock clock(1000);
  FakeNetd netd;
  Captured audit;
  Capd capd(clock, netd, {dir.write("n.json", delegationConfig()), ""});
  capd.start();
  auto app = capd.brokerFor(2000);
  auto treq = app.requestTicketRequest();
  auto scope = treq.initScope();
  scope.setScheme("https");
  scope.setHost("devnet.test");
  scope.setPort(443);
  treq.setDelegate("fetchd");
  auto tresp = treq.send().wait(io.waitScope);
  REQUIRE(tresp.getResult().isIssued());
  auto fetchd = capd.brokerFor(1002);
  auto g = fetchd.requestGrantForRequest();
  g.setTicket(tresp.getResult().getIssued().getTicket());
  auto gs = g.initScope();
  gs.setScheme("https");
  gs.setHost("devnet.test");
  gs.setPort(443);
  auto gresp = g.send().wait(io.waitScope);
  CHECK(gresp.getResult().isGranted());
  auto bad = fetchd.requestGrantForRequest();
  bad.initScope().setScheme("https");
  auto badResp = bad.send().wait(io.waitScope);
  REQUIRE(badResp.getResult().isRefused());
  CHECK(badResp.getResult().getRefused().getReason() == idl::GrantRefusal::BAD_TICKET);
  // fetchd itself does not hold net.http.fetch: it cannot mint tickets in anyone's name.
  auto self = fetchd.requestTicketRequest();
  self.initScope().setScheme("https");
  CHECK_THROWS_WITH(self.send().wait(io.waitScope), doctest::Contains("requires net.http.fetch"));
}

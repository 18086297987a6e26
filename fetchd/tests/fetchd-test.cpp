#include <capnp/rpc-twoparty.h>
#include <doctest/doctest.h>

#include "tests/support/temp-dir.h"
#include "tests/support/audit-capture.h"
#include "tests/support/wait.h"
#include <kj/async-io.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "common/audit.h"
#include "common/rpc-server.h"
#include "fetchd/fetch-client.h"
#include "fetchd/fetchd.h"
#include "idl/cap.capnp.h"

using namespace capnet;

namespace {

// capd as fetchd sees it: net.http.fetch for uid 2000 only; devnet off for every grant.
class FakeBroker final : public idl::Broker::Server {
 public:
  int grantRequests = 0;
  // What every FakeBroker answers (one is made per connection): the policy's fetch cap, and
  // whether check() answers only when the test says so (a slow capd).
  static inline uint32_t fetchesPerPrincipal = 0;
  static inline bool holdChecks = false;
  static inline std::vector<kj::Own<kj::PromiseFulfiller<void>>> held;
  kj::Promise<void> check(CheckContext context) override {
    bool ok = context.getParams().getSubjectUid() == 2000 && context.getParams().getCapability() == "net.http.fetch";
    auto d = context.getResults().initDecision();
    d.setAllowed(ok);
    d.setReason(ok ? "allowed" : "no-cap (app lacks net.http.fetch)");
    context.getResults().initFetch().setFetchesPerPrincipal(fetchesPerPrincipal);
    if (holdChecks) {
      auto paf = kj::newPromiseAndFulfiller<void>();
      held.push_back(kj::mv(paf.fulfiller));
      return kj::mv(paf.promise);
    }
    return kj::READY_NOW;
  }
  kj::Promise<void> describe(DescribeContext context) override {
    uid_t uid = context.getParams().getUid();
    auto r = context.getResults();
    r.setIsPrincipal(uid == 2000 || uid == 2001);
    if (uid == 2000) r.initCapabilities(1).set(0, "net.http.fetch");
    return kj::READY_NOW;
  }
  kj::Promise<void> requestGrantFor(RequestGrantForContext context) override {
    ++grantRequests;
    auto r = context.getResults().initResult().initRefused();
    r.setReason(idl::GrantRefusal::DEVNET_OFF);
    r.setDetail("devnet-off (network.devnet.enabled)");
    return kj::READY_NOW;
  }
};

using Captured = capnet::testing::AuditCapture;

struct Rig {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  capnet::testing::TempDir tmp{"fetchd-test"};
  std::string dir;
  FakeBroker* broker = nullptr;
  kj::Own<UnixRpcServer> capd;
  kj::Maybe<kj::Promise<void>> serving;
  HttpStub stub{std::string(CAPNET_SOURCE_DIR) + "/selftest/fixtures/web"};
  kj::Own<Fetchd> fetchd;
  Rig(bool capdUp = true) {
    dir = tmp.path;
    if (capdUp) {
      capd = kj::heap<UnixRpcServer>(*io.provider, "capd", RpcLimits{}, [this](const PeerCredentials&) {
        auto b = kj::heap<FakeBroker>();
        broker = b.get();
        return kj::Maybe<capnp::Capability::Client>(capnp::Capability::Client(kj::mv(b)));
      });
      capd->bind(dir + "/capd.sock", 0600).wait(io.waitScope);
      serving = capd->run().eagerlyEvaluate(nullptr);
    }
    fetchd = kj::heap<Fetchd>(*io.provider, io.provider->getTimer(), FetchdPaths{dir + "/capd.sock", dir + "/netd.sock"},
                              stub, FetchLimits{});
  }

  struct Out {
    bool refused = false;
    idl::FetchRefusal reason = idl::FetchRefusal::INTERNAL;
    uint16_t status = 0;
    std::string body, backend;
    bool done = false;
  };
  Out fetch(uid_t as, const std::string& url) {
    Out o;
    auto req = fetchd->fetcherFor(as).fetchRequest();
    req.initRequest().setUrl(url);
    req.setSink(kj::heap<BodyCollector>(BodyCollector::Into{.body = &o.body, .status = &o.status, .done = &o.done}));
    auto resp = req.send().wait(io.waitScope);
    auto r = resp.getResult();
    if (r.isRefused()) {
      o.refused = true;
      o.reason = r.getRefused().getReason();
    } else {
      o.backend = r.getResponse().getBackend();
      CHECK(r.getResponse().getStatus() == o.status);
    }
    return o;
  }
  // A fetch by `uid` whose capd check is held (FakeBroker::held) until the test fulfils it: the
  // fetch is in flight, counted against the caller.
  kj::Promise<capnp::Response<idl::Fetcher::FetchResults>> fetchHeldAtCapd(uid_t uid, const char* url) {
    FakeBroker::holdChecks = true;
    auto req = fetchd->fetcherFor(uid).fetchRequest();
    req.initRequest().setUrl(url);
    req.setSink(kj::heap<BodyCollector>());
    auto pending = req.send();
    REQUIRE(capnet::testing::runUntil(io, [] { return !FakeBroker::held.empty(); }));
    REQUIRE(FakeBroker::held.size() == 1);
    return pending;
  }
};

}  // namespace

TEST_CASE("the fixture path serves http://fixture.local/ through httpstubd for a principal with net.http.fetch") {
  Rig rig;
  Captured audit;
  auto o = rig.fetch(2000, "http://fixture.local/index.html#frag");
  REQUIRE_FALSE(o.refused);
  CHECK(o.status == 200);
  CHECK(o.done);
  CHECK(o.backend == "httpstubd");
  CHECK(o.body.find("httpstubd") != std::string::npos);
  CHECK(audit.has("httpstub: fetch 200 url=/index.html"));
  auto missing = rig.fetch(2000, "http://fixture.local/nope");
  CHECK(missing.status == 404);
}

TEST_CASE("without net.http.fetch even the fixture path is refused as no-cap") {
  Rig rig;
  Captured audit;
  auto o = rig.fetch(2001, "http://fixture.local/index.html");
  CHECK(o.refused);
  CHECK(o.reason == idl::FetchRefusal::NO_CAP);
  CHECK(audit.has("fetchd: deny host=fixture.local reason=no-cap uid=2001"));
}

TEST_CASE("a real host while devnet is off is refused as devnet-off after capd's refusal, with no connect") {
  Rig rig;
  Captured audit;
  auto o = rig.fetch(2000, "https://devnet.test/");
  CHECK(o.refused);
  CHECK(o.reason == idl::FetchRefusal::DEVNET_OFF);
  REQUIRE(rig.broker != nullptr);
  CHECK(rig.broker->grantRequests == 1);
  CHECK(audit.has("fetchd: deny host=devnet.test reason=devnet-off"));
}

TEST_CASE("bad URLs and other schemes are refused before anything is asked of capd") {
  Rig rig;
  Captured audit;
  auto o = rig.fetch(2000, "ftp://devnet.test/");
  CHECK(o.reason == idl::FetchRefusal::SCHEME);
  auto u = rig.fetch(2000, "https://user@devnet.test/");
  CHECK(u.reason == idl::FetchRefusal::BAD_URL);
  CHECK(audit.has("fetchd: deny host=- reason=scheme"));
  CHECK(rig.broker == nullptr);   // no capd connection was made.
}

TEST_CASE("capd unreachable: every fetch is refused as capd-unreachable") {
  Rig rig(false);
  Captured audit;
  auto o = rig.fetch(2000, "http://fixture.local/index.html");
  CHECK(o.refused);
  CHECK(o.reason == idl::FetchRefusal::CAPD_UNREACHABLE);
}

TEST_CASE("one caller cannot run more fetches at once than the policy's fetchesPerPrincipal") {
  Rig rig;
  Captured audit;
  FakeBroker::fetchesPerPrincipal = 1;
  // The first fetch teaches fetchd the policy's cap (capd reports it with every check).
  CHECK_FALSE(rig.fetch(2000, "http://fixture.local/index.html").refused);
  auto pending = rig.fetchHeldAtCapd(2000, "http://fixture.local/index.html");
  CHECK(rig.fetchd->fetchesOf(2000) == 1);
  auto second = rig.fetch(2000, "http://fixture.local/index.html");
  CHECK(second.refused);
  CHECK(second.reason == idl::FetchRefusal::TOO_MANY_FETCHES);
  CHECK(audit.has("fetchd: deny host=fixture.local reason=too-many-fetches uid=2000"));
  FakeBroker::holdChecks = false;
  for (auto& f : FakeBroker::held) f->fulfill();
  FakeBroker::held.clear();
  auto resp = pending.wait(rig.io.waitScope);
  CHECK(resp.getResult().isResponse());
  CHECK(rig.fetchd->fetchesOf(2000) == 0);
  CHECK_FALSE(rig.fetch(2000, "http://fixture.local/index.html").refused);
  FakeBroker::fetchesPerPrincipal = 0;
}

TEST_CASE("a caller at its fetch cap does not hold up another caller") {
  Rig rig;
  FakeBroker::fetchesPerPrincipal = 1;
  CHECK_FALSE(rig.fetch(2000, "http://fixture.local/index.html").refused);
  auto pending = rig.fetchHeldAtCapd(2000, "http://fixture.local/index.html");
  FakeBroker::holdChecks = false;
  // uid 2001 is a different caller: its fetch proceeds (and capd refuses it: not net.http.fetch).
  CHECK(rig.fetch(2001, "http://fixture.local/index.html").reason == idl::FetchRefusal::NO_CAP);
  for (auto& f : FakeBroker::held) f->fulfill();
  FakeBroker::held.clear();
  auto resp = pending.wait(rig.io.waitScope);
  CHECK(resp.getResult().isResponse());
  FakeBroker::fetchesPerPrincipal = 0;
}

TEST_CASE("fetchd's socket: a uid in no policy gets no bootstrap, and the gate answers from capd's facts") {
  Rig rig;
  Captured audit;
  CHECK(rig.fetchd->connectionFor(4242).wait(rig.io.waitScope) == nullptr);
  CHECK(audit.has("fetchd: refuse-connection reason=not-a-principal uid=4242"));
  // A principal without net.http.fetch is refused at fetchd's own gate, before capd is asked.
  KJ_IF_MAYBE(c, rig.fetchd->connectionFor(2001).wait(rig.io.waitScope)) {
    auto req = c->castAs<idl::Fetcher>().fetchRequest();
    req.initRequest().setUrl("http://fixture.local/index.html");
    CHECK_THROWS_WITH(req.send().wait(rig.io.waitScope), doctest::Contains("Fetcher.fetch requires net.http.fetch"));
  } else {
    FAIL("a principal was refused");
  }
  KJ_IF_MAYBE(c, rig.fetchd->connectionFor(2000).wait(rig.io.waitScope)) {
    auto req = c->castAs<idl::Fetcher>().fetchRequest();
    req.initRequest().setUrl("http://fixture.local/index.html");
    std::string body;
    uint16_t status = 0;
    bool done = false;
    req.setSink(kj::heap<BodyCollector>(BodyCollector::Into{.body = &body, .status = &status, .done = &done}));
    auto resp = req.send().wait(rig.io.waitScope);
    CHECK(resp.getResult().isResponse());
  } else {
    FAIL("the principal holding net.http.fetch was refused");
  }
}

TEST_CASE("fetchd's socket with capd down: served, and every fetch is refused as capd-unreachable") {
  Rig rig(false);
  Captured audit;
  KJ_IF_MAYBE(c, rig.fetchd->connectionFor(2000).wait(rig.io.waitScope)) {
    auto req = c->castAs<idl::Fetcher>().fetchRequest();
    req.initRequest().setUrl("http://fixture.local/index.html");
    auto resp = req.send().wait(rig.io.waitScope);
    REQUIRE(resp.getResult().isRefused());
    CHECK(resp.getResult().getRefused().getReason() == idl::FetchRefusal::CAPD_UNREACHABLE);
  } else {
    FAIL("refused while capd is down: the caller would not learn why");
  }
  CHECK(audit.has("fetchd: capd-unreachable uid=2000"));
}

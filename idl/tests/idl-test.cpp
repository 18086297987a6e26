#include <capnp/capability.h>
#include <capnp/schema.h>
#include <capnp/rpc-twoparty.h>
#include <doctest/doctest.h>
#include <kj/async-io.h>

#include <set>
#include <string>
#include <vector>

#include "common/audit.h"
#include "idl/cap.capnp.h"
#include "idl/capability-table.h"
#include "idl/config.capnp.h"
#include "idl/fetch.capnp.h"
#include "idl/gate.h"
#include "idl/net.capnp.h"
#include "idl/trust.capnp.h"

using namespace capnet;

namespace {

template <typename T>
void expectEveryMethodInTable(std::vector<std::string>& missing) {
  auto schema = capnp::Schema::from<T>();
  for (auto m : schema.getMethods()) {
    if (idl::findMethodAuthority(schema.getProto().getId(), m.getOrdinal()) == nullptr) {
      missing.push_back(std::string(schema.getShortDisplayName().cStr()) + "." + m.getProto().getName().cStr());
    }
  }
}

struct FakeAuthorizer final : Authorizer {
  bool principal = false;
  bool capd = false;
  std::set<std::string, std::less<>> caps;
  bool isPrincipal() const override { return principal; }
  bool isCapd() const override { return capd; }
  bool holds(std::string_view c) const override { return caps.count(c) != 0; }
  std::string who() const override { return "test"; }
};

class CountingNetControl final : public idl::NetControl::Server {
 public:
  int* announced;
  explicit CountingNetControl(int* a) : announced(a) {}
  kj::Promise<void> announce(AnnounceContext) override {
    ++*announced;
    return kj::READY_NOW;
  }
};

}  // namespace

TEST_CASE("every method of every interface in idl/ has an entry in the capability table") {
  std::vector<std::string> missing;
  expectEveryMethodInTable<idl::NetConnect>(missing);
  expectEveryMethodInTable<idl::ByteStream>(missing);
  expectEveryMethodInTable<idl::Broker>(missing);
  expectEveryMethodInTable<idl::NetControl>(missing);
  expectEveryMethodInTable<idl::Fetcher>(missing);
  expectEveryMethodInTable<idl::BodySink>(missing);
  expectEveryMethodInTable<idl::TrustManager>(missing);
  CHECK(missing.empty());
  size_t methods = 0;
  for (auto s : {capnp::Schema::from<idl::NetConnect>(), capnp::Schema::from<idl::ByteStream>(),
                 capnp::Schema::from<idl::Broker>(), capnp::Schema::from<idl::NetControl>(),
                 capnp::Schema::from<idl::Fetcher>(), capnp::Schema::from<idl::BodySink>(),
                 capnp::Schema::from<idl::TrustManager>()}) {
    methods += s.getMethods().size();
  }
  CHECK(idl::capabilityTable().size() == methods);
}

TEST_CASE("the table records the annotated capability of a method") {
  auto* m = idl::findMethodAuthority(capnp::typeId<idl::NetConnect>(), 0);
  REQUIRE(m != nullptr);
  CHECK(m->methodName == "connect");
  CHECK(m->authority == "net.tcp.connect");
  auto* r = idl::findMethodAuthority(capnp::typeId<idl::Broker>(), 5);
  REQUIRE(r != nullptr);
  CHECK(r->methodName == "reload");
  CHECK(r->authority == "net.dev.enable");
  CHECK(idl::findMethodAuthority(capnp::typeId<idl::Broker>(), 999) == nullptr);
}

TEST_CASE("the gate decides by the table: capability, principal, capd, held, unknown method") {
  FakeAuthorizer a;
  const uint64_t broker = capnp::typeId<idl::Broker>();
  CHECK(gateDecision(broker, 5, a) == "permission denied: Broker.reload requires net.dev.enable");
  a.caps.insert("net.dev.enable");
  CHECK(gateDecision(broker, 5, a).empty());
  CHECK(gateDecision(broker, 6, a) == "permission denied: Broker.status requires principal");
  a.principal = true;
  CHECK(gateDecision(broker, 6, a).empty());
  CHECK_FALSE(gateDecision(capnp::typeId<idl::NetControl>(), 0, a).empty());
  a.capd = true;
  CHECK(gateDecision(capnp::typeId<idl::NetControl>(), 0, a).empty());
  FakeAuthorizer nobody;
  CHECK(gateDecision(capnp::typeId<idl::ByteStream>(), 0, nobody).empty());
  CHECK(gateDecision(broker, 999, a) == "permission denied: method not in the capability table");
}

TEST_CASE("a gated server refuses over RPC when the capability is not held, and dispatches when it is") {
  auto io = kj::setupAsyncIo();
  std::vector<std::string> lines;
  setAuditSink([&](const std::string& l) { lines.push_back(l); });
  for (bool isCapd : {false, true}) {
    int announced = 0;
    auto auth = kj::heap<FakeAuthorizer>();
    auth->capd = isCapd;
    auto pipe = kj::newTwoWayPipe();
    capnp::TwoPartyClient server(*pipe.ends[0], gated<idl::NetControl>(kj::heap<CountingNetControl>(&announced), kj::mv(auth), "test"),
                                 capnp::rpc::twoparty::Side::SERVER);
    capnp::TwoPartyClient client(*pipe.ends[1]);
    auto control = client.bootstrap().castAs<idl::NetControl>();
    auto req = control.announceRequest();
    req.setDevnetEnabled(true);
    auto result = req.send().then([](auto&&) { return std::string(); },
                                  [](kj::Exception&& e) { return std::string(e.getDescription().cStr()); })
                      .wait(io.waitScope);
    if (isCapd) {
      CHECK(result.empty());
      CHECK(announced == 1);
    } else {
      CHECK(result.find("permission denied: NetControl.announce requires capd") != std::string::npos);
      CHECK(announced == 0);
    }
  }
  setAuditSink({});
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "test: deny principal=test method=NetControl.announce reason=no-cap requires=capd");
}

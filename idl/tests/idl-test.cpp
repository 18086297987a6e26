#include <capnp/capability.h>
#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <capnp/schema.h>
#include <doctest/doctest.h>
#include <kj/async-io.h>

#include <algorithm>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/file.h"
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

// Every interface in idl/. The first test fails when the table holds an interface this list lacks,
// so a new interface cannot escape these checks.
std::vector<capnp::InterfaceSchema> idlInterfaces() {
  return {capnp::Schema::from<idl::NetConnect>(), capnp::Schema::from<idl::ByteStream>(),
          capnp::Schema::from<idl::Broker>(),     capnp::Schema::from<idl::NetControl>(),
          capnp::Schema::from<idl::Fetcher>(),    capnp::Schema::from<idl::BodySink>(),
          capnp::Schema::from<idl::TrustManager>()};
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

// Not final: Gated<> derives from it.
class CountingBroker : public idl::Broker::Server {
 public:
  explicit CountingBroker(int& reloads) : reloads_(reloads) {}
  kj::Promise<void> reload(ReloadContext context) override {
    ++reloads_;
    // thisCap() must work behind the gate: the gated object is the capnp server itself.
    idl::Broker::Client self = thisCap();
    context.getResults().setApplied(true);
    return kj::READY_NOW;
  }

 private:
  int& reloads_;
};

std::string outcome(kj::Promise<std::string> p, kj::WaitScope& ws) { return p.wait(ws); }

template <typename Response>
kj::Promise<std::string> describe(capnp::RemotePromise<Response>&& call) {
  return call.then([](auto&&) { return std::string("ok"); },
                   [](kj::Exception&& e) { return std::string(e.getDescription().cStr()); });
}

// A server and a client over an in-process two-party RPC connection.
struct RpcPair {
  kj::TwoWayPipe pipe;
  capnp::TwoPartyClient server;
  capnp::TwoPartyClient client;
  explicit RpcPair(capnp::Capability::Client bootstrap, kj::TwoWayPipe p = kj::newTwoWayPipe())
      : pipe(kj::mv(p)),
        server(*pipe.ends[0], kj::mv(bootstrap), capnp::rpc::twoparty::Side::SERVER),
        client(*pipe.ends[1]) {}
};

std::string readFile(const char* path) {
  auto read = capnet::readFileBounded(path, 16u << 20);
  return read.ok() ? std::move(read).value() : std::string();
}

std::optional<capnp::JsonValue::Reader> at(capnp::JsonValue::Reader v, std::initializer_list<std::string_view> path) {
  for (auto key : path) {
    if (!v.isObject()) return std::nullopt;
    bool found = false;
    for (auto f : v.getObject()) {
      if (std::string_view(f.getName().cStr()) == key) {
        v = f.getValue();
        found = true;
        break;
      }
    }
    if (!found) return std::nullopt;
  }
  return v;
}

std::vector<std::string> strings(capnp::JsonValue::Reader v) {
  std::vector<std::string> out;
  if (!v.isArray()) return out;
  for (auto item : v.getArray()) out.push_back(item.isString() ? item.getString().cStr() : "<not a string>");
  return out;
}

// Every object schema in the tree says what it does with members it does not list.
void collectOpenObjects(capnp::JsonValue::Reader v, const std::string& path, std::vector<std::string>& open) {
  if (v.isArray()) {
    unsigned i = 0;
    for (auto item : v.getArray()) collectOpenObjects(item, path + "[" + std::to_string(i++) + "]", open);
    return;
  }
  if (!v.isObject()) return;
  auto type = at(v, {"type"});
  if (type && type->isString() && std::string_view(type->getString().cStr()) == "object" &&
      !at(v, {"additionalProperties"})) {
    open.push_back(path);
  }
  for (auto f : v.getObject()) collectOpenObjects(f.getValue(), path + "/" + f.getName().cStr(), open);
}

}  // namespace

TEST_CASE("every method of every interface in idl/ has exactly one table entry, under its own name") {
  std::vector<std::string> problems;
  std::set<uint64_t> listed;
  size_t methods = 0;
  for (auto schema : idlInterfaces()) {
    listed.insert(schema.getProto().getId());
    std::string iface = schema.getShortDisplayName().cStr();
    for (auto m : schema.getMethods()) {
      ++methods;
      std::string name = iface + "." + m.getProto().getName().cStr();
      auto* entry = idl::findMethodAuthority(schema.getProto().getId(), m.getOrdinal());
      if (entry == nullptr) {
        problems.push_back(name + ": missing");
      } else if (entry->interfaceName != iface || entry->methodName != m.getProto().getName().cStr()) {
        problems.push_back(name + ": recorded as " + std::string(entry->interfaceName) + "." +
                           std::string(entry->methodName));
      }
    }
  }
  CHECK(problems.empty());
  for (const auto& p : problems) MESSAGE(p);
  std::set<uint64_t> inTable;
  for (const auto& e : idl::capabilityTable()) inTable.insert(e.interfaceId);
  CHECK_MESSAGE(inTable == listed, "the table and idlInterfaces() disagree on which interfaces exist");
  CHECK(idl::capabilityTable().size() == methods);
  CHECK(idl::kCapabilityTableSize == methods);
}

TEST_CASE("every authority in the table is a reserved name or a capability the config can grant") {
  std::set<std::string, std::less<>> allowed = {"principal", "capd", "held"};
  for (auto c : idl::KNOWN_CAPABILITIES.get()) allowed.insert(c.cStr());
  REQUIRE(allowed.size() == 3 + 8);
  for (const auto& e : idl::capabilityTable()) {
    std::string what = std::string(e.interfaceName) + "." + std::string(e.methodName) + " requires " +
                       std::string(e.authority);
    CHECK_MESSAGE(allowed.count(e.authority) == 1, what);
  }
}

TEST_CASE("the table records each method's annotated authority and is sorted for lookup") {
  auto* m = idl::findMethodAuthority(capnp::typeId<idl::NetConnect>(), 0);
  REQUIRE(m != nullptr);
  CHECK(m->methodName == "connect");
  CHECK(m->authority == "net.tcp.connect");
  auto* r = idl::findMethodAuthority(capnp::typeId<idl::Broker>(), 5);
  REQUIRE(r != nullptr);
  CHECK(r->methodName == "reload");
  CHECK(r->authority == "net.dev.enable");
  auto* s = idl::findMethodAuthority(capnp::typeId<idl::ByteStream>(), 1);
  REQUIRE(s != nullptr);
  CHECK(s->authority == "held");
  CHECK(idl::findMethodAuthority(capnp::typeId<idl::Broker>(), 999) == nullptr);
  CHECK(idl::findMethodAuthority(0x1234, 0) == nullptr);
  auto table = idl::capabilityTable();
  CHECK(std::is_sorted(table.begin(), table.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.interfaceId, a.methodId) < std::make_pair(b.interfaceId, b.methodId);
  }));
}

TEST_CASE("the gate decides by the table: capability, principal, capd, held, unknown method") {
  FakeAuthorizer a;
  const uint64_t broker = capnp::typeId<idl::Broker>();
  CHECK(gateDecision(broker, 5, a) == "permission denied: Broker.reload requires net.dev.enable");
  a.caps.insert("net.trust.manage");
  CHECK_FALSE(decideCall(broker, 5, a).allowed);   // another capability does not stand in.
  a.caps.insert("net.dev.enable");
  CHECK(decideCall(broker, 5, a).allowed);
  CHECK(gateDecision(broker, 5, a).empty());
  CHECK(gateDecision(broker, 6, a) == "permission denied: Broker.status requires principal");
  a.principal = true;
  CHECK(gateDecision(broker, 6, a).empty());
  CHECK(gateDecision(capnp::typeId<idl::NetControl>(), 0, a) ==
        "permission denied: NetControl.announce requires capd");
  a.capd = true;
  CHECK(gateDecision(capnp::typeId<idl::NetControl>(), 0, a).empty());
  FakeAuthorizer nobody;
  CHECK(decideCall(capnp::typeId<idl::ByteStream>(), 0, nobody).allowed);   // "held"
  auto unknown = decideCall(broker, 999, a);   // everything held, still refused.
  CHECK_FALSE(unknown.allowed);
  CHECK(unknown.method == nullptr);
  CHECK(unknown.refusal.find("permission denied: method @999 of interface 0x") == 0);
  CHECK(unknown.refusal.find("is not in the capability table") != std::string::npos);
}

TEST_CASE("a gated server refuses over RPC when the caller is not capd, and dispatches when it is") {
  auto io = kj::setupAsyncIo();
  std::vector<std::string> lines;
  setAuditSink([&](const std::string& l) { lines.push_back(l); });
  for (bool isCapd : {false, true}) {
    int announced = 0;
    auto auth = kj::heap<FakeAuthorizer>();
    auth->capd = isCapd;
    RpcPair rpc(gated<idl::NetControl>(kj::heap<CountingNetControl>(&announced), kj::mv(auth), "test"));
    auto control = rpc.client.bootstrap().castAs<idl::NetControl>();
    auto req = control.announceRequest();
    req.setDevnetEnabled(true);
    std::string result = outcome(describe(req.send()), io.waitScope);
    if (isCapd) {
      CHECK(result == "ok");
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

TEST_CASE("Gated<Impl> refuses a method whose capability is not held and dispatches it once it is") {
  auto io = kj::setupAsyncIo();
  std::vector<std::string> lines;
  setAuditSink([&](const std::string& l) { lines.push_back(l); });
  for (bool held : {false, true}) {
    int reloads = 0;
    auto auth = kj::heap<FakeAuthorizer>();
    auth->principal = true;
    if (held) auth->caps.insert("net.dev.enable");
    RpcPair rpc(makeGated<CountingBroker>(kj::mv(auth), "capd", reloads));
    auto broker = rpc.client.bootstrap().castAs<idl::Broker>();
    auto applied = broker.reloadRequest().send().then(
        [](auto&& r) { return std::string(r.getApplied() ? "applied" : "not applied"); },
        [](kj::Exception&& e) { return std::string(e.getDescription().cStr()); });
    std::string result = applied.wait(io.waitScope);
    if (held) {
      CHECK(result == "applied");
      CHECK(reloads == 1);
    } else {
      CHECK(result.find("permission denied: Broker.reload requires net.dev.enable") != std::string::npos);
      CHECK(reloads == 0);
    }
  }
  setAuditSink({});
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "capd: deny principal=test method=Broker.reload reason=no-cap requires=net.dev.enable");
}

TEST_CASE("a method missing from the capability table is refused over RPC even when everything is held") {
  auto io = kj::setupAsyncIo();
  std::vector<std::string> lines;
  setAuditSink([&](const std::string& l) { lines.push_back(l); });
  int reloads = 0;
  auto auth = kj::heap<FakeAuthorizer>();
  auth->principal = true;
  auth->capd = true;
  auth->caps.insert("net.dev.enable");
  RpcPair rpc(makeGated<CountingBroker>(kj::mv(auth), "capd", reloads));
  auto cap = rpc.client.bootstrap();
  auto call = cap.typelessRequest(capnp::typeId<idl::Broker>(), 42, nullptr);
  std::string result = outcome(describe(call.send()), io.waitScope);
  setAuditSink({});
  CHECK(result.find("permission denied: method @42 of interface 0x") != std::string::npos);
  CHECK(reloads == 0);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("capd: deny principal=test method=0x") == 0);
  CHECK(lines[0].find("@42 reason=not-in-table") != std::string::npos);
}

TEST_CASE("the generated JSON Schema is valid JSON and states the config's rules") {
  std::string text = readFile(CAPNET_GENERATED_SCHEMA);
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<capnp::JsonValue>();
  capnp::JsonCodec codec;
  REQUIRE_NOTHROW(codec.decodeRaw(kj::arrayPtr(text.data(), text.size()), root));
  auto r = root.asReader();

  auto dialect = at(r, {"$schema"});
  REQUIRE(dialect);
  CHECK(std::string(dialect->getString().cStr()) == "https://json-schema.org/draft/2020-12/schema");

  auto network = at(r, {"properties", "network", "properties"});
  REQUIRE(network);

  auto enabled = at(*network, {"devnet", "properties", "enabled"});
  REQUIRE(enabled);
  CHECK(std::string(at(*enabled, {"type"})->getString().cStr()) == "boolean");
  REQUIRE(at(*enabled, {"default"}));
  CHECK(at(*enabled, {"default"})->isBoolean());
  CHECK(at(*enabled, {"default"})->getBoolean() == false);
  CHECK(std::string(at(*enabled, {"description"})->getString().cStr()).find("Off by default") != std::string::npos);

  auto timePolicy = at(*network, {"tls", "properties", "certTimePolicy"});
  REQUIRE(timePolicy);
  CHECK(strings(*at(*timePolicy, {"enum"})) == std::vector<std::string>{"enforce", "ignore-validity"});
  CHECK(std::string(at(*timePolicy, {"default"})->getString().cStr()) == "enforce");
  // The enumerant's doc comment explains the value in the editor.
  CHECK(std::string(at(*timePolicy, {"description"})->getString().cStr()).find("\"ignore-validity\": Honoured only") !=
        std::string::npos);

  auto hosts = at(*network, {"hosts"});
  REQUIRE(hosts);
  CHECK(std::string(at(*hosts, {"type"})->getString().cStr()) == "object");
  CHECK(std::string(at(*hosts, {"additionalProperties", "format"})->getString().cStr()) == "ipv4");
  CHECK(at(*hosts, {"propertyNames", "pattern"}).has_value());

  auto principal = at(*network, {"principals", "additionalProperties"});
  REQUIRE(principal);
  CHECK(at(*principal, {"additionalProperties"})->isBoolean());
  CHECK(at(*principal, {"additionalProperties"})->getBoolean() == false);
  CHECK(at(*principal, {"properties", "uid", "minimum"})->getNumber() == 1);
  CHECK(at(*principal, {"properties", "uid", "maximum"})->getNumber() == 4294967294.0);
  CHECK(strings(*at(*principal, {"required"})) == std::vector<std::string>{"uid"});
  std::vector<std::string> known;
  for (auto c : idl::KNOWN_CAPABILITIES.get()) known.push_back(c.cStr());
  CHECK(strings(*at(*principal, {"properties", "capabilities", "items", "enum"})) == known);

  auto maxHeader = at(*network, {"http", "properties", "maxHeaderBytes"});
  REQUIRE(maxHeader);
  CHECK(at(*maxHeader, {"default"})->getNumber() == 16384);
  CHECK(at(*maxHeader, {"minimum"})->getNumber() == 1024);
  CHECK(at(*maxHeader, {"maximum"})->getNumber() == 1048576);

  std::vector<std::string> open;
  collectOpenObjects(r, "", open);
  CHECK(open.empty());
  for (const auto& o : open) MESSAGE("object schema without additionalProperties: " << o);
}

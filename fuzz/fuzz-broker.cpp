// Cap'n Proto messages from a hostile peer into capd's real bootstrap object (CapdService: the
// Broker and the TrustManager) over an in-process connection, through the same RPC layer and
// reader limits capd's socket uses. The input is the raw byte stream the peer sends.
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "capd/broker.h"
#include "common/audit.h"

namespace {

class InstantNetd final : public capnet::NetdLink {
 public:
  bool connected() const override { return true; }
  kj::Promise<bool> registerGrant(capnet::idl::Grant::Reader) override { return true; }
  kj::Promise<void> revoke(const capnet::GrantToken&) override { return kj::READY_NOW; }
  kj::Promise<void> revokeAll() override { return kj::READY_NOW; }
  kj::Promise<void> announce(const capnet::Announcement&) override { return kj::READY_NOW; }
};

struct World {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  capnet::FakeClock clock{1780272000000LL};
  InstantNetd netd;
  std::string dir;
  kj::Own<capnet::Capd> capd;
  World() {
    char t[] = "/tmp/fuzz-broker-XXXXXX";
    dir = ::mkdtemp(t);
    std::filesystem::create_directories(dir + "/state/trust/installed");
    std::filesystem::create_directories(dir + "/pkg/trust");
    std::ofstream(dir + "/network.json") << R"({"network": {"devnet": {"enabled": true}, "principals": {
        "fuzz": {"uid": 2000, "capabilities": ["net.tcp.connect", "net.dns.resolve", "net.tls.validate",
                 "net.http.fetch", "net.http.devnet", "net.trust.manage", "net.dev.enable"]},
        "fetchd": {"uid": 1002, "capabilities": ["net.grant.delegate"]}},
        "hosts": {"devnet.test": "10.0.2.100"}}})";
    capd = kj::heap<capnet::Capd>(clock, netd, capnet::ConfigSources{dir + "/network.json", ""});
    capd->setTrustRoots(capnet::Roots{dir + "/pkg", dir + "/state"});
    capd->start();
    capnet::setAuditSink([](const std::string&) {});   // the trail is not what is fuzzed.
  }
};

World* gWorld = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gWorld = new World();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = *gWorld;
  auto pipe = w.io.provider->newTwoWayPipe();
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 1u << 16;   // capd's socket limits (common/rpc-server.h)
  options.nestingLimit = 16;
  capnp::TwoPartyVatNetwork network(*pipe.ends[0], capnp::rpc::twoparty::Side::SERVER, options);
  auto rpc = capnp::makeRpcServer(network, capnp::Capability::Client(w.capd->brokerFor(2000)));
  rpc.setFlowLimit(1u << 16);
  auto& peer = *pipe.ends[1];
  // The peer writes everything, then ends its side; whatever capd answers is read and dropped.
  auto writing = peer.write(data, size).then([&peer]() { peer.shutdownWrite(); });
  auto buffer = kj::heapArray<kj::byte>(4096);
  kj::Function<kj::Promise<void>()> drain = [&]() -> kj::Promise<void> {
    return peer.tryRead(buffer.begin(), 1, buffer.size()).then([&](size_t n) -> kj::Promise<void> {
      if (n == 0) return kj::READY_NOW;
      return drain();
    });
  };
  auto draining = drain().eagerlyEvaluate([](kj::Exception&&) {});
  auto done = writing.catch_([](kj::Exception&&) {}).then([&network]() { return network.onDisconnect(); });
  w.io.provider->getTimer().timeoutAfter(2 * kj::SECONDS, kj::mv(done)).then([]() {}, [](kj::Exception&&) {})
      .wait(w.io.waitScope);
  return 0;
}

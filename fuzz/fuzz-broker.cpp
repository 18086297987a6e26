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
#include "fuzz/rpc-feed.h"

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
  capnet::fuzz::feedRpc(w.io, capnp::Capability::Client(w.capd->brokerFor(2000)), data, size);
  return 0;
}

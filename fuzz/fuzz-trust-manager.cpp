// Cap'n Proto messages from a hostile principal into capd's TrustManager (capd/broker.cpp: the
// TrustManager half of CapdService, served to a uid holding net.trust.manage) over an in-process
// connection: list, add (PEM parsing, certificate checks, the write into state:/trust/installed/)
// and remove. The input is the raw byte stream the peer sends (seeds: fuzz/make-seeds.cpp).
// Each input starts from the same trust store: one shipped root (the test PKI's CA), nothing
// installed, so an `add` in one input never changes what the next one sees.
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
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
  capnet::FakeClock clock{1780272000000LL};   // 2026-06-01: the test PKI is valid
  InstantNetd netd;
  std::string dir;
  kj::Own<capnet::Capd> capd;
  World() {
    char t[] = "/tmp/fuzz-trust-XXXXXX";
    dir = ::mkdtemp(t);
    std::filesystem::create_directories(dir + "/state/trust/installed");
    std::filesystem::create_directories(dir + "/pkg/trust");
    std::error_code ignored;
    std::filesystem::copy_file(std::string(CAPNET_BUILD_DIR) + "/selftest/tls/ca.pem", dir + "/pkg/trust/ca.pem", ignored);
    std::ofstream(dir + "/network.json") << R"({"network": {"devnet": {"enabled": true}, "principals": {
        "admin": {"uid": 2000, "capabilities": ["net.trust.manage"]}}}})";
    capd = kj::heap<capnet::Capd>(clock, netd, capnet::ConfigSources{dir + "/network.json", ""});
    capd->setTrustRoots(capnet::Roots{dir + "/pkg", dir + "/state"});
    capd->start();
    // The trail is not what is fuzzed (FUZZ_AUDIT=1 shows it, to see how far an input gets).
    if (::getenv("FUZZ_AUDIT") == nullptr) capnet::setAuditSink([](const std::string&) {});
  }
  void resetInstalled() {
    std::error_code ignored;
    for (const auto& e : std::filesystem::directory_iterator(dir + "/state/trust/installed", ignored)) {
      std::filesystem::remove_all(e.path(), ignored);
    }
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
  w.resetInstalled();
  capnet::fuzz::feedRpc(w.io, capnp::Capability::Client(w.capd->brokerFor(2000)), data, size);
  return 0;
}

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
#include "fuzz/fuzz-world.h"
#include "fuzz/capd-world.h"
#include "fuzz/rpc-feed.h"

namespace {

struct World : capnet::fuzz::CapdWorld {
  World()
      : capnet::fuzz::CapdWorld("fuzz-broker", R"({"network": {"devnet": {"enabled": true}, "principals": {
        "fuzz": {"uid": 2000, "capabilities": ["net.tcp.connect", "net.dns.resolve", "net.tls.validate",
                 "net.http.fetch", "net.http.devnet", "net.trust.manage", "net.dev.enable"]},
        "fetchd": {"uid": 1002, "capabilities": ["net.grant.delegate"]}},
        "hosts": {"devnet.test": "10.0.2.100"}}})") {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& w = capnet::fuzz::world<World>();
  capnet::fuzz::feedRpc(w.io, capnp::Capability::Client(w.capd->brokerFor(2000)), data, size);
  return 0;
}

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
#include "fuzz/fuzz-world.h"
#include "fuzz/capd-world.h"
#include "fuzz/rpc-feed.h"

namespace {

struct World : capnet::fuzz::CapdWorld {
  World()
      : capnet::fuzz::CapdWorld("fuzz-trust", R"({"network": {"devnet": {"enabled": true}, "principals": {
        "admin": {"uid": 2000, "capabilities": ["net.trust.manage"]}}}})", std::string(CAPNET_BUILD_DIR) + "/selftest/tls/ca.pem") {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& w = capnet::fuzz::world<World>();
  w.resetInstalled();
  capnet::fuzz::feedRpc(w.io, capnp::Capability::Client(w.capd->brokerFor(2000)), data, size);
  return 0;
}

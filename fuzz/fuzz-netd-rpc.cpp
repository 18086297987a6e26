// Cap'n Proto messages from a hostile app into netd's app-facing bootstrap (netd/server/
// netd-server.cpp: Netd::netConnectFor, the gated NetConnect) over an in-process connection,
// through the same RPC layer and reader limits netd's app socket uses. A registered grant
// (token 0x42 x16, tcp devnet.test:7) lets a well-formed connect succeed, so pipelined calls reach
// the ByteStream netd hands out (read, write, shutdownWrite, close) over an in-memory echo peer.
// The input is the raw byte stream the app sends (seeds: fuzz/make-seeds.cpp).
// Each input gets a fresh Netd (grants, streams, policy), so inputs are independent.
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/audit.h"
#include "netd/memory-connection.h"
#include "netd/server/netd-server.h"
#include "tests/support/memory-stack.h"
#include "tests/support/netd-control.h"
#include "fuzz/fuzz-world.h"
#include "fuzz/rpc-feed.h"

namespace {

constexpr uid_t kCapd = 1001, kApp = 2000;

// The TCP stack under netd: every connect to port 7 reaches an echo peer in memory; any other
// port is refused (RST), so both outcomes of a connect are reachable.
class EchoStack final : public capnet::testing::MemoryStack {
 public:
  EchoStack() : MemoryStack("memory echo") {}
  kj::Promise<Connected> connect(uint32_t, uint16_t port, uint32_t) override {
    if (port != 7) return Connected(capnet::fail(capnet::ConnectError::kRefused, "refused"));
    return echoPeer();
  }
};

struct World {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  capnet::FakeClock clock{0};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& w = capnet::fuzz::world<World>();
  auto stack = kj::heap<EchoStack>();
  auto netd = kj::heap<capnet::Netd>(w.clock, w.io.provider->getTimer(), *stack, kCapd);
  auto control = netd->controlFor(kCapd);   // a live capd session that announced the policy:
  capnet::NetdPolicy policy;
  policy.devnetEnabled = true;
  policy.generation = 1;
  policy.principals[kApp] = {"net.tcp.connect"};
  netd->announce(policy);
  auto grant = capnet::testing::testGrant(0x42, kApp, "tcp", 60000);   // tcp devnet.test:7
  capnet::testing::addGrant(*netd, grant);
  capnet::fuzz::feedRpc(w.io, capnp::Capability::Client(netd->netConnectFor(kApp)), data, size);
  // Let the echo peers see their connections end before netd goes.
  w.io.waitScope.poll();
  control = nullptr;
  netd = nullptr;
  w.io.waitScope.poll();
  return 0;
}

// The one way the RPC fuzz targets (broker, trust-manager, netd-rpc, fetchd-rpc) feed an input: the
// bytes are a peer's raw Cap'n Proto stream into a daemon's real bootstrap object, served with the
// reader limits and flow limit every daemon socket applies (common/rpc-server.h); whatever the
// daemon answers is read and dropped; the connection is then given 2 s to end.
#pragma once

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <cstddef>
#include <cstdint>

namespace capnet::fuzz {

enum class PeerEnd {
  kAfterWrite,   // the peer ends its side as soon as its bytes are written
  kAfterSettle,  // ... only once what the bytes set off has run to quiescence (calls that dial
                 //     other services, as fetchd's do, would otherwise be cut by the peer's end)
};

inline void feedRpc(kj::AsyncIoContext& io, capnp::Capability::Client bootstrap, const uint8_t* data, size_t size,
                    PeerEnd end = PeerEnd::kAfterWrite) {
  auto pipe = io.provider->newTwoWayPipe();
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 1u << 16;   // the daemons' socket limits (common/rpc-server.h)
  options.nestingLimit = 16;
  capnp::TwoPartyVatNetwork network(*pipe.ends[0], capnp::rpc::twoparty::Side::SERVER, options);
  auto rpc = capnp::makeRpcServer(network, kj::mv(bootstrap));
  rpc.setFlowLimit(1u << 16);
  auto& peer = *pipe.ends[1];
  auto buffer = kj::heapArray<kj::byte>(4096);
  kj::Function<kj::Promise<void>()> drain = [&]() -> kj::Promise<void> {
    return peer.tryRead(buffer.begin(), 1, buffer.size()).then([&](size_t n) -> kj::Promise<void> {
      if (n == 0) return kj::READY_NOW;
      return drain();
    });
  };
  auto draining = drain().eagerlyEvaluate([](kj::Exception&&) {});
  kj::Promise<void> done = nullptr;
  if (end == PeerEnd::kAfterWrite) {
    done = peer.write(data, size)
               .then([&peer]() { peer.shutdownWrite(); })
               .catch_([](kj::Exception&&) {})
               .then([&network]() { return network.onDisconnect(); });
  } else {
    auto writing = peer.write(data, size).then([]() {}, [](kj::Exception&&) {}).eagerlyEvaluate(nullptr);
    io.waitScope.poll();
    io.waitScope.poll();
    peer.shutdownWrite();
    done = network.onDisconnect();
  }
  io.provider->getTimer().timeoutAfter(2 * kj::SECONDS, kj::mv(done)).then([]() {}, [](kj::Exception&&) {}).wait(io.waitScope);
}

}  // namespace capnet::fuzz

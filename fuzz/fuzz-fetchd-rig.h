// The in-process world the fetchd targets (http, fetchd-rpc) run fetchd's real code in: fetchd's
// FetcherImpl (fetchd/fetchd.cpp) dials capd and netd by socket path through its AsyncIoProvider;
// here that provider's network connects each dial to an in-memory pipe served in the same process:
// "capd" by a fake Broker (fetchd's side of the conversation is what is fuzzed, not capd), "netd"
// by the REAL Netd (netd/server/netd-server.cpp) whose TCP stack hands out in-memory connections to
// a scripted origin server. Nothing touches the OS's network, and because every hop is an
// in-memory event, WaitScope::poll() runs a fetch until it is done or waits on the fuzzer's peer.
#pragma once

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/audit.h"
#include "fetchd/fetch-client.h"
#include "fetchd/fetchd.h"
#include "idl/cap.capnp.h"
#include "netd/memory-connection.h"
#include "netd/server/netd-server.h"
#include "tests/support/memory-stack.h"
#include "tests/support/minting-broker.h"
#include "tests/support/netd-control.h"

namespace capnet::fuzzrig {

constexpr uid_t kCapdUid = 1001, kFetchdUid = 1002, kAppUid = 2000;
constexpr uint8_t kTokenByte = 0x42, kTicketByte = 0x77;

struct IgnoreErrors : kj::TaskSet::ErrorHandler {
  void taskFailed(kj::Exception&&) override {}
};

// Serves one bootstrap capability per connection on in-memory pipes.
class MemoryServer {
 public:
  using Factory = std::function<capnp::Capability::Client()>;
  explicit MemoryServer(Factory f) : factory_(std::move(f)) {}
  void serve(kj::Own<kj::AsyncIoStream> stream) {
    auto network = kj::heap<capnp::TwoPartyVatNetwork>(*stream, capnp::rpc::twoparty::Side::SERVER);
    auto rpc = kj::heap<capnp::RpcSystem<capnp::rpc::twoparty::VatId>>(capnp::makeRpcServer(*network, factory_()));
    auto done = network->onDisconnect();
    tasks_.add(done.attach(kj::mv(rpc), kj::mv(network), kj::mv(stream)));
  }

 private:
  Factory factory_;
  IgnoreErrors ignore_;
  kj::TaskSet tasks_{ignore_};
};

class MemoryAddress final : public kj::NetworkAddress {
 public:
  MemoryAddress(kj::AsyncIoProvider& io, MemoryServer* server, kj::String name)
      : io_(io), server_(server), name_(kj::mv(name)) {}
  kj::Promise<kj::Own<kj::AsyncIoStream>> connect() override {
    if (server_ == nullptr) return KJ_EXCEPTION(DISCONNECTED, "connection refused", name_);
    auto pipe = io_.newTwoWayPipe();
    server_->serve(kj::mv(pipe.ends[1]));
    return kj::mv(pipe.ends[0]);
  }
  kj::Own<kj::ConnectionReceiver> listen() override { KJ_UNIMPLEMENTED("listen"); }
  kj::Own<kj::NetworkAddress> clone() override { return kj::heap<MemoryAddress>(io_, server_, kj::str(name_)); }
  kj::String toString() override { return kj::str(name_); }

 private:
  kj::AsyncIoProvider& io_;
  MemoryServer* server_;
  kj::String name_;
};

class MemoryNetwork final : public kj::Network {
 public:
  MemoryNetwork(kj::AsyncIoProvider& io, MemoryServer& capd, MemoryServer& netd) : io_(io), capd_(capd), netd_(netd) {}
  kj::Promise<kj::Own<kj::NetworkAddress>> parseAddress(kj::StringPtr addr, uint) override {
    MemoryServer* s = addr == "unix:capd" ? &capd_ : addr == "unix:netd" ? &netd_ : nullptr;
    return kj::Own<kj::NetworkAddress>(kj::heap<MemoryAddress>(io_, s, kj::str(addr)));
  }
  kj::Own<kj::NetworkAddress> getSockaddr(const void*, uint) override { KJ_UNIMPLEMENTED("getSockaddr"); }
  kj::Own<kj::Network> restrictPeers(kj::ArrayPtr<const kj::StringPtr>, kj::ArrayPtr<const kj::StringPtr>) override {
    KJ_UNIMPLEMENTED("restrictPeers");
  }

 private:
  kj::AsyncIoProvider& io_;
  MemoryServer& capd_;
  MemoryServer& netd_;
};

// The real provider, except that its network is the in-memory one above.
class MemoryIoProvider final : public kj::AsyncIoProvider {
 public:
  MemoryIoProvider(kj::AsyncIoProvider& real, MemoryServer& capd, MemoryServer& netd)
      : real_(real), network_(real, capd, netd) {}
  kj::OneWayPipe newOneWayPipe() override { return real_.newOneWayPipe(); }
  kj::TwoWayPipe newTwoWayPipe() override { return real_.newTwoWayPipe(); }
  kj::Network& getNetwork() override { return network_; }
  kj::AsyncIoProvider::PipeThread newPipeThread(kj::Function<void(kj::AsyncIoProvider&, kj::AsyncIoStream&, kj::WaitScope&)>) override {
    KJ_UNIMPLEMENTED("newPipeThread");
  }
  kj::Timer& getTimer() override { return real_.getTimer(); }

 private:
  kj::AsyncIoProvider& real_;
  MemoryNetwork network_;
};

// The origin server behind netd: the n-th connection reads the request head and answers with
// whatever responder(n) returns, in 8 KiB writes, then half-closes.
class OriginStack final : public testing::MemoryStack {
 public:
  std::function<std::string(size_t)> responder;
  size_t connects = 0;
  OriginStack() : MemoryStack("memory origin") {}
  kj::Promise<Connected> connect(uint32_t, uint16_t, uint32_t) override {
    std::string response = responder ? responder(connects) : std::string();
    ++connects;
    return httpPeer([response = kj::mv(response)](const std::string&) { return response; });
  }
};

// The event loop the worlds are built on, kept across inputs.
struct EventLoop {
  kj::AsyncIoContext io = kj::setupAsyncIo();
};

// One fetchd + netd + capd world. Built per input (cheap: no sockets, no files), so nothing a fetch
// leaves behind (in-flight counts, grants, streams) reaches the next input.
struct FetchdWorld {
  kj::AsyncIoProvider& real;
  FakeClock clock{0};
  testing::MintingPolicy minting;
  OriginStack origin;
  Netd netd;
  kj::Maybe<capnp::Capability::Client> control;
  MemoryServer capdServer{[this]() { return capnp::Capability::Client(kj::heap<testing::MintingBroker>(minting)); }};
  MemoryServer netdServer{[this]() { return capnp::Capability::Client(netd.netConnectFor(kFetchdUid)); }};
  MemoryIoProvider io;
  HttpStub stub{"/nonexistent"};
  kj::Own<Fetchd> fetchd;

  FetchdWorld(kj::AsyncIoProvider& realIo, FetchLimits limits)
      : real(realIo), netd(clock, realIo.getTimer(), origin, kCapdUid), io(realIo, capdServer, netdServer) {
    control = testing::grantHttpDevnet(netd, kCapdUid, kFetchdUid, kTokenByte);
    fetchd = kj::heap<Fetchd>(io, realIo.getTimer(), FetchdPaths{"capd", "netd"}, stub, limits);
  }
};

}  // namespace capnet::fuzzrig

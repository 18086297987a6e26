// A Cap'n Proto RPC server on a Unix socket, one TwoPartyVatNetwork per accepted connection.
//
// The peer's identity is the kernel's (SO_PEERCRED), read once at accept time and fixed for the
// connection's life; the bootstrap capability is built for that uid by the caller's factory, so
// every server knows who it serves without trusting anything inside a message. Each connection
// has its own ReaderOptions (traversal and nesting limits): a hostile message is refused by the
// RPC layer and only that connection is dropped. No exception escapes: connection failures are
// logged and the connection is closed.
#pragma once

#include <capnp/capability.h>
#include <capnp/message.h>
#include <kj/async-io.h>
#include <kj/function.h>

#include <string>

#include "common/peer.h"

namespace capnet {

struct RpcLimits {
  uint64_t traversalLimitInWords = 1u << 16;   // 512 KiB per message.
  int nestingLimit = 16;
  size_t maxConnections = 256;
};

class UnixRpcServer {
 public:
  // Called once per connection with the peer's kernel credentials. Returning nullptr refuses the
  // connection (it is closed at once).
  using Factory = kj::Function<kj::Maybe<capnp::Capability::Client>(const PeerCredentials&)>;

  // `component` prefixes audit lines ("capd", "netd"...).
  UnixRpcServer(kj::AsyncIoProvider& io, std::string component, RpcLimits limits, Factory factory);
  ~UnixRpcServer();

  // Binds `path` (a stale socket file is replaced) and sets its mode; resolves once bound, so a
  // daemon can bind as root and drop privileges before it serves anyone.
  kj::Promise<void> bind(const std::string& path, unsigned mode);
  // Accepts and serves connections until destroyed. Precondition: bind() resolved.
  kj::Promise<void> run();

  // Serves one already-connected stream (tests, socketpairs).
  void serve(kj::Own<kj::AsyncIoStream> stream);

  size_t connectionCount() const;

 private:
  struct Connection;
  kj::Promise<void> acceptLoop(kj::ConnectionReceiver& listener);

  kj::AsyncIoProvider& io_;
  std::string component_;
  RpcLimits limits_;
  Factory factory_;
  kj::Own<kj::TaskSet::ErrorHandler> errors_;   // declared before tasks_: outlives it.
  kj::Own<kj::ConnectionReceiver> listener_;
  kj::Own<kj::TaskSet> tasks_;
  size_t connections_ = 0;
};

}  // namespace capnet

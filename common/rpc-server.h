// A Cap'n Proto RPC server on a Unix socket, one TwoPartyVatNetwork per accepted connection.
//
// The peer's identity is the kernel's (SO_PEERCRED), read once at accept time and fixed for the
// connection's life; the bootstrap capability is built for that uid by the caller's factory, so
// every server knows who it serves without trusting anything inside a message. No exception
// escapes: connection failures are logged and the connection is closed.
//
// Every peer is bounded (a server never spends unbounded memory on behalf of one client):
//   - connections: at most maxConnections in all and maxConnectionsPerUid per uid; a refused
//     connection is closed at once with `<component>: refuse-connection reason=too-many-connections`;
//   - a factory that returns null (a uid in no policy) refuses the connection: no bootstrap at all;
//   - each message: ReaderOptions (size, traversal and nesting limits);
//   - calls in flight: RpcSystem::setFlowLimit, so a peer whose calls pile up stops being read;
//   - answers the peer does not read: once more than maxQueuedReplyBytes wait in the outgoing
//     queue the connection is closed (reason=peer-not-reading) instead of growing the daemon;
//   - questions the peer never finishes: every answer is kept (with its message) until the peer
//     sends Finish, which the flow limit does not count; past maxOpenQuestions the connection is
//     closed (reason=too-many-open-questions);
//   - a connection that has not completed one call within firstCallDeadlineMs is closed
//     (reason=no-call-before-deadline), so idle sockets cannot hold slots.
#pragma once

#include <capnp/capability.h>
#include <capnp/message.h>
#include <kj/async-io.h>
#include <kj/function.h>

#include <cstdint>
#include <map>
#include <string>

#include "common/peer.h"

namespace capnet {

struct RpcLimits {
  uint64_t traversalLimitInWords = 1u << 16;   // 512 KiB per message.
  int nestingLimit = 16;
  size_t maxConnections = 256;                 // every peer together.
  size_t maxConnectionsPerUid = 8;             // config network.limits.connectionsPerUid
  size_t flowLimitWords = 1u << 16;            // 512 KiB of calls awaiting their answer.
  size_t maxQueuedReplyBytes = 2u << 20;       // answers written but not read by the peer.
  size_t maxOpenQuestions = 256;               // calls (and bootstraps) the peer has not finished.
  uint32_t firstCallDeadlineMs = 5000;         // config network.limits.firstCallDeadlineMs
};

// `base` with the per-peer caps a policy sets (network.limits).
inline RpcLimits withPeerCaps(RpcLimits base, uint32_t connectionsPerUid, uint32_t firstCallDeadlineMs) {
  base.maxConnectionsPerUid = connectionsPerUid;
  base.firstCallDeadlineMs = firstCallDeadlineMs;
  return base;
}

class UnixRpcServer {
 public:
  // Called once per connection with the peer's kernel credentials. Returning null refuses the
  // connection (it is closed at once, and the factory audits why).
  using Factory = kj::Function<kj::Maybe<capnp::Capability::Client>(const PeerCredentials&)>;
  // The same, for a daemon that must ask someone before it knows (fetchd asks capd). The peer's
  // connection slot is held while the answer is pending.
  using AsyncFactory =
      kj::Function<kj::Promise<kj::Maybe<capnp::Capability::Client>>(const PeerCredentials&)>;

  // `component` prefixes audit lines ("capd", "netd"...).
  UnixRpcServer(kj::AsyncIoProvider& io, std::string component, RpcLimits limits, Factory factory);
  struct Async {};
  UnixRpcServer(kj::AsyncIoProvider& io, std::string component, RpcLimits limits, Async, AsyncFactory factory);
  ~UnixRpcServer();

  // Binds `path` (a stale socket file is replaced) and sets its mode; resolves once bound, so a
  // daemon can bind as root and drop privileges before it serves anyone.
  kj::Promise<void> bind(const std::string& path, unsigned mode);
  // Accepts and serves connections until destroyed. Precondition: bind() resolved.
  kj::Promise<void> run();

  // Serves one already-connected stream (tests, socketpairs).
  void serve(kj::Own<kj::AsyncIoStream> stream);

  // Policy may change the per-peer limits at run time (capd's reload, netd's announce); open
  // connections keep the limits they were accepted with, new ones get these.
  void setLimits(const RpcLimits& limits) { limits_ = limits; }
  const RpcLimits& limits() const { return limits_; }

  size_t connectionCount() const;
  size_t connectionCount(uid_t uid) const;

 private:
  struct Connection;
  class GuardedStream;
  kj::Promise<void> acceptLoop(kj::ConnectionReceiver& listener);
  kj::Promise<void> watch(Connection& conn, RpcLimits limits, kj::TimePoint start);
  void release(uid_t uid);

  kj::AsyncIoProvider& io_;
  std::string component_;
  RpcLimits limits_;
  AsyncFactory factory_;
  kj::Own<kj::TaskSet::ErrorHandler> errors_;   // declared before tasks_: outlives it.
  kj::Own<kj::ConnectionReceiver> listener_;
  std::map<uid_t, size_t> perUid_;
  size_t connections_ = 0;
  kj::Own<kj::TaskSet> tasks_;                  // last: destroyed first, releasing slots above.
};

}  // namespace capnet

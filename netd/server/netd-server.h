// netd's servers: the privileged NetControl channel (capd only) and the NetConnect interface apps
// and fetchd use. netd holds no config: what it allows is exactly what capd registered.
#pragma once

#include <sys/types.h>

#include <string>

#include <kj/timer.h>

#include "capd/grant-registry.h"
#include "common/clock.h"
#include "idl/cap.capnp.h"
#include "idl/net.capnp.h"
#include "netd/tcp-stack.h"
#include "netd/tls-wrapper.h"

namespace capnet {

inline constexpr uint32_t kMaxStreamChunk = 64 * 1024;

class Netd {
 public:
  Netd(const Clock& clock, kj::Timer& timer, TcpStack& stack, uid_t capdUid, TlsWrapper* tls = nullptr);

  // The control channel. Only capd's uid gets one (anyone else: nullptr, connection refused).
  // A newer session replaces an older one; when the live session ends, netd forgets every grant.
  kj::Maybe<capnp::Capability::Client> controlFor(uid_t peer);
  // The app-facing interface for a connection whose peer is `uid`.
  idl::NetConnect::Client netConnectFor(uid_t peer);

  bool capdConnected() const { return capdSession_ != 0; }
  bool devnetEnabled() const { return devnet_; }
  GrantRegistry& grants() { return grants_; }
  TcpStack& stack() { return stack_; }
  TlsWrapper* tls() { return tls_; }
  const Clock& clock() const { return clock_; }
  kj::Timer& timer() { return timer_; }

  // Called by the control session objects.
  void sessionOpened(uint64_t id);
  void sessionClosed(uint64_t id);
  bool isLiveSession(uint64_t id) const { return id == capdSession_; }
  void announce(bool devnet, uint64_t generation);

 private:
  const Clock& clock_;
  kj::Timer& timer_;
  TcpStack& stack_;
  uid_t capdUid_;
  TlsWrapper* tls_;
  GrantRegistry grants_;
  bool devnet_ = false;
  uint64_t generation_ = 0;
  uint64_t capdSession_ = 0;   // 0: no live control session.
  uint64_t nextSession_ = 1;
};

// The reason string used in audit lines and selftest checks, e.g. "devnet-off", "no-cap".
std::string_view refusalName(idl::ConnectRefusal r);

}  // namespace capnet

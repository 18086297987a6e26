// netd's servers: the privileged NetControl channel (capd only) and the NetConnect interface apps
// and fetchd use. netd holds no config: what it allows is exactly what capd registered.
#pragma once

#include "idl/stream-closed.h"

#include <sys/types.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <kj/timer.h>

#include "netd/grant-registry.h"
#include "common/clock.h"
#include "idl/cap.capnp.h"
#include "idl/net.capnp.h"
#include "netd/tcp-stack.h"
#include "netd/tls-wrapper.h"

namespace capnet {

inline constexpr uint32_t kMaxStreamChunk = 64 * 1024;
// Calls a holder may have queued on one stream, per direction; more fail at once (OVERLOADED).
// With the chunk size and the per-principal stream cap this bounds what netd holds for a client.
inline constexpr unsigned kMaxQueuedCallsPerStream = 8;

// Closed streams report their reason as idl/stream-closed.h describes (kStreamClosedPrefix).

class StreamState;

// What capd announced with the policy (NetControl.announce), as netd keeps it: devnet, who the
// principals are and what each holds (the gate decides from these facts), and the limits netd
// enforces per principal.
struct NetdLimits {
  uint32_t streamsPerPrincipal = 16;     // network.limits.streamsPerPrincipal (open + connecting)
  uint32_t connectionsPerUid = 8;        // network.limits.connectionsPerUid (netd's app socket)
  uint32_t firstCallDeadlineMs = 5000;   // network.limits.firstCallDeadlineMs
  uint32_t maxStreamMs = 300000;         // network.grants.maxStreamMs: life of a stream past its grant's expiry
};

struct NetdPolicy {
  bool devnetEnabled = false;
  uint64_t generation = 0;
  std::map<uid_t, std::set<std::string, std::less<>>> principals;
  NetdLimits limits;
};

// The announcement as netd keeps it (zero limits mean netd's defaults, except maxStreamMs).
NetdPolicy policyFromWire(idl::NetControl::AnnounceParams::Reader a);

class Netd {
 public:
  Netd(const Clock& clock, kj::Timer& timer, TcpStack& stack, uid_t capdUid, TlsWrapper* tls = nullptr);
  ~Netd() noexcept;

  // The control channel. Only capd's uid gets one (anyone else: nullptr, connection refused).
  // A newer session replaces an older one; when the live session ends, netd forgets every grant.
  kj::Maybe<capnp::Capability::Client> controlFor(uid_t peer);
  // The app-facing interface for a connection whose peer is `uid`.
  idl::NetConnect::Client netConnectFor(uid_t peer);

  bool capdConnected() const { return capdSession_ != 0; }
  // Whether netd knows capd's policy: a live control session that has announced it. Until then
  // (capd just (re)connected) netd knows no facts and refuses every connect as capdUnreachable.
  bool policyKnown() const { return capdSession_ != 0 && announcedSession_ == capdSession_; }
  bool devnetEnabled() const { return devnet_; }
  const NetdLimits& limits() const { return limits_; }
  // Facts announced by capd: whether `uid` is a principal and what it holds.
  bool isPrincipal(uid_t uid) const { return principals_.count(uid) != 0; }
  bool holds(uid_t uid, std::string_view capability) const;
  // Whether netd's app socket serves `uid` at all: while the policy is unknown everyone (every
  // connect is then refused as capd-unreachable), afterwards only principals.
  bool servesApp(uid_t uid) const { return !policyKnown() || isPrincipal(uid); }
  GrantRegistry& grants() { return grants_; }
  TcpStack& stack() { return stack_; }
  TlsWrapper* tls() { return tls_; }
  const Clock& clock() const { return clock_; }
  kj::Timer& timer() { return timer_; }

  // Called by the control session objects.
  void sessionOpened(uint64_t id);
  void sessionClosed(uint64_t id);
  bool isLiveSession(uint64_t id) const { return id == capdSession_; }
  void announce(NetdPolicy policy);
  // Told of every announcement's limits: netd's app socket takes its per-peer caps from them.
  void setLimitsObserver(std::function<void(const NetdLimits&)> observer) { limitsObserver_ = std::move(observer); }

  // Streams, each tied to the grant it was opened under (so taking the grant away ends them)
  // and counted against its holder's cap from the moment its connect starts.
  size_t liveStreams() const;   // streams that can still carry bytes.
  size_t streamsOf(uid_t uid) const;
  bool reserveStream(uid_t uid);   // false: the holder is at streamsPerPrincipal.
  void releaseStream(uid_t uid);
  void trackStream(StreamState& s);
  void untrackStream(StreamState& s);
  // Closes the streams opened under `token` (all when null) with `reason`: one audit line each.
  size_t closeStreams(const GrantToken* token, idl::ConnectRefusal reason);
  // Drops expired grants and closes streams whose grant expired more than maxStreamMs ago.
  void sweep();
  // Runs sweep() every `interval` until destroyed.
  kj::Promise<void> housekeeping(kj::Duration interval = 1 * kj::SECONDS);

 private:
  const Clock& clock_;
  kj::Timer& timer_;
  TcpStack& stack_;
  uid_t capdUid_;
  TlsWrapper* tls_;
  GrantRegistry grants_;
  bool devnet_ = false;
  uint64_t announcedSession_ = 0;   // the control session whose announcement netd holds.
  uint64_t generation_ = 0;
  std::map<uid_t, std::set<std::string, std::less<>>> principals_;
  NetdLimits limits_;
  std::set<StreamState*> streams_;
  std::map<uid_t, size_t> streamsPerUid_;
  std::function<void(const NetdLimits&)> limitsObserver_;
  uint64_t capdSession_ = 0;   // 0: no live control session.
  uint64_t nextSession_ = 1;
};

// The reason's one spelling (idl/names.h), e.g. "devnet-off", "no-cap", "tls-expired".
std::string_view refusalName(idl::ConnectRefusal r);

}  // namespace capnet

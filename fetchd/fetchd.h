// fetchd: the fetch service apps use (idl/fetch.capnp). http://fixture.local/ is answered in
// process by httpstubd and is always the default; any other host is a real fetch, possible only
// while devnet is on: fetchd asks capd for a grant on the caller's behalf (requestGrantFor, the
// caller identified by SO_PEERCRED) and asks netd to connect with it. Every refusal is immediate,
// typed, and one audit line `fetchd: deny host=<host> reason=<reason>`.
#pragma once

#include <sys/types.h>

#include <kj/async-io.h>
#include <kj/timer.h>

#include <functional>
#include <map>
#include <string>

#include "fetchd/httpstub.h"
#include "idl/fetch.capnp.h"

namespace capnet {

struct FetchLimits {
  uint64_t maxBodyBytes = 8u << 20;     // config network.http.maxBodyBytes
  uint32_t maxHeaderBytes = 16384;      // config network.http.maxHeaderBytes
  uint32_t maxRedirects = 5;            // config network.http.maxRedirects
  uint32_t totalTimeoutMs = 30000;      // config network.timeouts.totalMs
};

struct FetchdPaths {
  std::string capd;   // capd's broker socket
  std::string netd;   // netd's app socket
};

class Fetchd {
 public:
  Fetchd(kj::AsyncIoProvider& io, kj::Timer& timer, FetchdPaths paths, HttpStub& stub, FetchLimits limits);
  idl::Fetcher::Client fetcherFor(uid_t caller);
  // The socket's factory: asks capd what `caller` is (Broker.describe). A uid in no policy gets no
  // bootstrap (null, and an audit line); a principal gets a Fetcher whose gate answers from capd's
  // facts. If capd cannot be asked, the Fetcher is served and every fetch is refused as
  // capdUnreachable (each fetch asks capd again), so the caller learns why.
  kj::Promise<kj::Maybe<capnp::Capability::Client>> connectionFor(uid_t caller);

  kj::AsyncIoProvider& io() { return io_; }
  kj::Timer& timer() { return timer_; }
  const FetchdPaths& paths() const { return paths_; }
  HttpStub& stub() { return stub_; }
  const FetchLimits& limits() const { return limits_; }

  // Fetches in flight per calling uid, capped by network.limits.fetchesPerPrincipal as capd last
  // reported it (4 until then).
  bool startFetch(uid_t caller);   // false: the caller is at its cap.
  void endFetch(uid_t caller);
  void setFetchesPerPrincipal(uint32_t n) { fetchesPerPrincipal_ = n; }
  // Told of the socket limits capd reports with every check (connectionsPerUid, firstCallDeadlineMs).
  void setSocketLimitsObserver(std::function<void(uint32_t connectionsPerUid, uint32_t firstCallDeadlineMs)> o) {
    socketLimits_ = std::move(o);
  }
  void socketLimits(uint32_t connectionsPerUid, uint32_t firstCallDeadlineMs) {
    if (socketLimits_ && connectionsPerUid != 0 && firstCallDeadlineMs != 0) socketLimits_(connectionsPerUid, firstCallDeadlineMs);
  }
  size_t fetchesOf(uid_t caller) const;

 private:
  kj::AsyncIoProvider& io_;
  kj::Timer& timer_;
  FetchdPaths paths_;
  HttpStub& stub_;
  FetchLimits limits_;
  uint32_t fetchesPerPrincipal_ = 4;
  std::map<uid_t, size_t> inFlight_;
  std::function<void(uint32_t, uint32_t)> socketLimits_;
};

}  // namespace capnet

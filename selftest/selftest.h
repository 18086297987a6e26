// The in-guest self-test client. Each profile runs a list of scenarios; each scenario prints its
// marker: `SELFTEST: <name> ok`, `SELFTEST: <name> placeholder reason=...` (a dependency is absent:
// never ok), or `SELFTEST: <name> FAIL reason=...`. An ok is printed only after the real path ran
// and its outcome (and reason) was checked.
#pragma once

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <functional>
#include <string>
#include <vector>

#include "idl/cap.capnp.h"
#include "idl/fetch.capnp.h"
#include "idl/net.capnp.h"

namespace capnet::selftest {

// Principals of the default config (config/network.json).
inline constexpr uid_t kSelftestUid = 1100;
inline constexpr uid_t kAppUid = 1101;
inline constexpr uid_t kFetchdUid = 1002;

struct Paths {
  std::string capd = "/run/capnet/capd.sock";
  std::string netd = "/run/capnet/netd.sock";
  std::string fetchd = "/run/capnet/fetchd.sock";
};

// One RPC connection to a daemon, opened as a given uid.
class Session {
 public:
  Session(kj::AsyncIoContext& io, const std::string& path, uid_t uid);
  bool ok() const { return client_ != nullptr; }
  const std::string& error() const { return error_; }
  template <typename T>
  typename T::Client as() {
    return client_->bootstrap().castAs<T>();
  }

 private:
  kj::Own<kj::AsyncIoStream> stream_;
  kj::Own<capnp::TwoPartyClient> client_;
  std::string error_;
};

struct Context {
  kj::AsyncIoContext& io;
  Paths paths;
  std::string profile;
};

enum class Outcome { kOk, kPlaceholder, kFail };

struct Report {
  Outcome outcome = Outcome::kFail;
  std::string reason;   // for placeholder and fail; optional detail for ok (e.g. "bytes=1024").
};

struct Scenario {
  std::string name;   // the marker's name, e.g. "net dev off deny"
  std::function<Report(Context&)> run;
};

// Scenarios for a profile, gathered from every scenario file.
std::vector<Scenario> netScenarios(const std::string& profile);
std::vector<Scenario> benchScenarios(const std::string& profile);   // selftest/bench.cpp

// Prints the marker for a report; returns false for a failure.
bool printMarker(const std::string& name, const Report& r);

// Helpers shared by the scenario files.
std::string refusalName(idl::ConnectRefusal r);
bool fileExists(const std::string& path);

// The pid of the running process named `name` (from /proc/*/comm), or 0.
pid_t pidOf(const std::string& name);

// A daemon's resident memory and open descriptors, from /proc (zeros when it is not running).
struct Footprint {
  long rssKb = 0;
  long fds = 0;
};
Footprint footprintOf(const std::string& name);

// A grant minted by capd for `as` (requestGrant over a new session), or why it was refused.
struct Grant {
  bool ok = false;
  kj::Array<kj::byte> token;
  std::string refusal;   // when !ok: the reason's name and capd's detail
};
Grant requestGrant(Context& ctx, uid_t as, const char* scheme, const char* host, uint16_t port);

}  // namespace capnet::selftest

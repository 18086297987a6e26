// selftest: runs the scenarios of one profile and prints their markers (selftest/selftest.h).
// Started by the guest's init as root, so that each scenario can act as the principal it needs
// (connections are opened as that uid; see common/unix-connect.h).
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/cli.h"
#include "common/unix-connect.h"
#include "selftest/selftest.h"

namespace capnet::selftest {

Session::Session(kj::AsyncIoContext& io, const std::string& path, uid_t uid) {
  int fd = connectUnixAs(uid, path);
  if (fd < 0) {
    error_ = "cannot connect to " + path + ": " + std::strerror(errno);
    return;
  }
  stream_ = io.lowLevelProvider->wrapSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
  client_ = kj::heap<capnp::TwoPartyClient>(*stream_);
}

bool printMarker(const std::string& name, const Report& r) {
  switch (r.outcome) {
    case Outcome::kOk:
      std::printf("SELFTEST: %s ok%s%s\n", name.c_str(), r.reason.empty() ? "" : " ", r.reason.c_str());
      break;
    case Outcome::kPlaceholder:
      std::printf("SELFTEST: %s placeholder reason=%s\n", name.c_str(), r.reason.c_str());
      break;
    case Outcome::kFail:
      std::printf("SELFTEST: %s FAIL reason=%s\n", name.c_str(), r.reason.c_str());
      break;
  }
  std::fflush(stdout);
  return r.outcome != Outcome::kFail;
}

// Until netd says the connected capd has announced its policy (status.policyKnown), or `limit`
// passes; then the scenarios run either way (each reports what it finds). Each status call is
// bounded too: a netd that accepts but does not answer cannot hold the wait past its limit.
void waitForPolicy(Context& ctx, std::chrono::milliseconds limit) {
  auto& timer = ctx.io.provider->getTimer();
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    bool ready = false;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
      Session netd(ctx.io, ctx.paths.netd, kSelftestUid);
      if (!netd.ok()) return;
      auto status = netd.as<idl::NetConnect>().statusRequest().send().then(
          [](capnp::Response<idl::NetConnect::StatusResults>&& r) { return r.getCapdConnected() && r.getPolicyKnown(); });
      ready = timer.timeoutAfter(1 * kj::SECONDS, kj::mv(status)).wait(ctx.io.waitScope);
    })) {
      (void)e;   // not reachable yet, refused or too slow: try again
    }
    if (ready) return;
    timer.afterDelay(20 * kj::MILLISECONDS).wait(ctx.io.waitScope);
  }
}

}  // namespace capnet::selftest

int main(int argc, char** argv) {
  using namespace capnet::selftest;
  constexpr const char* kUsage = "usage: selftest --profile NAME [--run-dir DIR]\n";
  if (int rc = capnet::cli::standardFlags(argc, argv, "selftest", kUsage); rc >= 0) return rc;
  std::string profile;
  Paths paths;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--profile" && i + 1 < argc) {
      profile = argv[++i];
    } else if (a == "--run-dir" && i + 1 < argc) {
      std::string dir = argv[++i];
      paths = Paths{dir + "/capd.sock", dir + "/netd.sock", dir + "/fetchd.sock"};
    } else {
      return capnet::cli::usageError("selftest", "unknown argument " + a, kUsage);
    }
  }
  auto scenarios = netScenarios(profile);
  for (auto& s : benchScenarios(profile)) scenarios.push_back(std::move(s));
  if (scenarios.empty()) {
    std::printf("SELFTEST: profile %s has no scenarios\n", profile.c_str());
    return 0;
  }
  auto io = kj::setupAsyncIo();
  Context ctx{io, paths, profile};
  // init starts the daemons at once and waits only for their sockets: wait (bounded) until capd's
  // announcement reached netd, so that no scenario starts in that window.
  waitForPolicy(ctx, std::chrono::seconds(10));
  bool allOk = true;
  for (auto& s : scenarios) {
    Report r;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { r = s.run(ctx); })) {
      r = Report{Outcome::kFail, std::string("exception: ") + e->getDescription().cStr()};
    }
    allOk = printMarker(s.name, r) && allOk;
  }
  std::printf("SELFTEST: done profile=%s\n", profile.c_str());
  return allOk ? 0 : 1;
}

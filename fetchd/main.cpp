// fetchd: main parses arguments, binds the socket, drops privileges, and serves (fetchd/fetchd.h).
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/cli.h"
#include "common/audit.h"
#include "common/privileges.h"
#include "common/rpc-server.h"
#include "fetchd/fetchd.h"

namespace {

constexpr const char* kUsage =
    "usage: fetchd --socket PATH --capd PATH --netd PATH --fixtures DIR [--uid N --gid N]\n"
    "              [--max-body-bytes N] [--max-header-bytes N] [--max-redirects N] [--total-timeout-ms N]\n";


}  // namespace

int main(int argc, char** argv) {
  if (int rc = capnet::cli::standardFlags(argc, argv, "fetchd", kUsage); rc >= 0) return rc;
  std::string socketPath, fixtures;
  capnet::FetchdPaths paths;
  capnet::FetchLimits limits;
  unsigned long long uid = 0, gid = 0, v = 0;
  bool drop = false, haveGid = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    const char* val = i + 1 < argc ? argv[++i] : nullptr;
    if (val == nullptr) {
      std::fprintf(stderr, "fetchd: %s needs a value\n%s", a.c_str(), kUsage);
      return 2;
    }
    if (a == "--socket") socketPath = val;
    else if (a == "--capd") paths.capd = val;
    else if (a == "--netd") paths.netd = val;
    else if (a == "--fixtures") fixtures = val;
    else if (a == "--uid" && capnet::cli::parseUint(val, 4294967294ull, uid)) drop = true;
    else if (a == "--gid" && capnet::cli::parseUint(val, 4294967294ull, gid)) haveGid = true;
    else if (a == "--max-body-bytes" && capnet::cli::parseUint(val, 1ull << 30, v) && v > 0) limits.maxBodyBytes = v;
    else if (a == "--max-header-bytes" && capnet::cli::parseUint(val, 1u << 20, v) && v >= 1024) limits.maxHeaderBytes = static_cast<uint32_t>(v);
    else if (a == "--max-redirects" && capnet::cli::parseUint(val, 20, v)) limits.maxRedirects = static_cast<uint32_t>(v);
    else if (a == "--total-timeout-ms" && capnet::cli::parseUint(val, 3600000, v) && v > 0) limits.totalTimeoutMs = static_cast<uint32_t>(v);
    else {
      std::fprintf(stderr, "fetchd: bad argument %s %s\n%s", a.c_str(), val, kUsage);
      return 2;
    }
  }
  if (socketPath.empty() || paths.capd.empty() || paths.netd.empty() || fixtures.empty()) {
    std::fprintf(stderr, "fetchd: --socket, --capd, --netd and --fixtures are required\n%s", kUsage);
    return 2;
  }
  if (drop && !haveGid) gid = uid;
  ::signal(SIGPIPE, SIG_IGN);
  capnet::startAsyncAudit();   // a slow console never blocks the event loop.
  auto io = kj::setupAsyncIo();
  capnet::HttpStub stub(fixtures);
  capnet::Fetchd fetchd(*io.provider, io.provider->getTimer(), paths, stub, limits);
  // A uid in no policy gets no bootstrap: fetchd asks capd (Broker.describe) at accept.
  capnet::UnixRpcServer server(*io.provider, "fetchd", capnet::RpcLimits{}, capnet::UnixRpcServer::Async{},
                               [&fetchd](const capnet::PeerCredentials& p) { return fetchd.connectionFor(p.uid); });
  fetchd.setSocketLimitsObserver([&server](uint32_t perUid, uint32_t deadlineMs) {
    capnet::RpcLimits l = server.limits();
    l.maxConnectionsPerUid = perUid;
    l.firstCallDeadlineMs = deadlineMs;
    server.setLimits(l);
  });
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { server.bind(socketPath, 0666).wait(io.waitScope); })) {
    std::fprintf(stderr, "fetchd: cannot bind %s: %s\n", socketPath.c_str(), e->getDescription().cStr());
    return 1;
  }
  if (drop) {
    auto dropped = capnet::dropPrivileges(static_cast<uid_t>(uid), static_cast<gid_t>(gid));
    if (!dropped.ok()) {
      std::fprintf(stderr, "fetchd: %s\n", dropped.message().c_str());
      return 1;
    }
  }
  capnet::audit("httpstubd", "ready", {{"root", fixtures}});
  capnet::audit("fetchd", "ready", {{"socket", socketPath}});
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { server.run().wait(io.waitScope); })) {
    std::fprintf(stderr, "fetchd: server stopped: %s\n", e->getDescription().cStr());
    return 1;
  }
  return 0;
}

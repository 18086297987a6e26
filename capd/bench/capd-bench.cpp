// capd benchmark: grant mint latency over a real Unix socket (Cap'n Proto RPC, SO_PEERCRED,
// policy decision, getrandom, registration with a netd stand-in) and GrantRegistry::check()
// throughput (the lookup netd runs on every connect), printed side by side in one run.
//
//   build/capd/capd-bench [mints] [checks]
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "capd/broker.h"
#include "tests/support/instant-netd.h"
#include "tests/support/temp-dir.h"
#include "netd/grant-registry.h"
#include "common/audit.h"
#include "common/rpc-server.h"

using namespace capnet;

namespace {

using capnet::testing::InstantNetd;

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  const int mints = argc > 1 ? std::atoi(argv[1]) : 5000;
  const long checks = argc > 2 ? std::atol(argv[2]) : 5000000;
  setAuditSink([](const std::string&) {});   // audit lines are not what we measure.

  capnet::testing::TempDir tmp("capd-bench");   // removed with its contents when main returns
  const std::string dir = tmp.path;
  std::string config = dir + "/network.json";
  std::ofstream(config) << R"({"network": {"devnet": {"enabled": true}, "principals": {"bench": {"uid": )"
                        << getuid() << R"(, "capabilities": ["net.tcp.connect", "net.dns.resolve"]}},
                            "hosts": {"devnet.test": "10.0.2.2"}}})";
  if (getuid() == 0) {
    std::fprintf(stderr, "capd-bench: running as root; uid 0 cannot be a principal, run as another user\n");
  }

  auto io = kj::setupAsyncIo();
  SystemClock clock;
  InstantNetd netd;
  Capd capd(clock, netd, {config, ""});
  capd.start();
  UnixRpcServer server(*io.provider, "capd", RpcLimits{}, [&](const PeerCredentials& peer) {
    return kj::Maybe<capnp::Capability::Client>(capnp::Capability::Client(capd.brokerFor(peer.uid)));
  });
  std::string sock = dir + "/capd.sock";
  server.bind(sock, 0600).wait(io.waitScope);
  auto serving = server.run().eagerlyEvaluate(nullptr);

  auto addr = io.provider->getNetwork().parseAddress(kj::str("unix:", sock.c_str())).wait(io.waitScope);
  auto stream = addr->connect().wait(io.waitScope);
  capnp::TwoPartyClient client(*stream);
  auto broker = client.bootstrap().castAs<idl::Broker>();

  std::vector<double> latencyUs;
  latencyUs.reserve(static_cast<size_t>(mints));
  GrantRegistry registry(clock);
  int refused = 0;
  for (int i = 0; i < mints + 100; ++i) {
    auto req = broker.requestGrantRequest();
    auto scope = req.initScope();
    scope.setScheme("tcp");
    scope.setHost("devnet.test");
    scope.setPort(7);
    auto t0 = std::chrono::steady_clock::now();
    auto resp = req.send().wait(io.waitScope);
    auto t1 = std::chrono::steady_clock::now();
    if (!resp.getResult().isGranted()) {
      ++refused;
      continue;
    }
    if (i >= 100) latencyUs.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    capnp::MallocMessageBuilder m;
    auto g = m.initRoot<idl::Grant>();
    g.setToken(resp.getResult().getGranted().getToken());
    g.setHolderUid(getuid());
    auto s = g.initScope();
    s.setScheme("tcp");
    s.setHost("devnet.test");
    s.setPort(7);
    g.setExpiresAtMs(clock.nowMs() + 3600000);
    registry.add(g.asReader());
  }
  if (latencyUs.empty()) {
    std::fprintf(stderr, "capd-bench: every mint was refused (%d); see the note above\n", refused);
    return 1;
  }

  // The lookup netd runs on every connect: a mix of valid, forged and out-of-scope tokens.
  std::vector<GrantToken> tokens;
  for (int i = 0; i < 1000; ++i) tokens.push_back(randomToken());
  size_t allowed = 0;
  auto c0 = std::chrono::steady_clock::now();
  for (long i = 0; i < checks; ++i) {
    const GrantToken& t = tokens[static_cast<size_t>(i) % tokens.size()];
    allowed += registry.check(t, getuid(), false, "devnet.test", 7).allowed();
  }
  auto c1 = std::chrono::steady_clock::now();
  double seconds = std::chrono::duration<double>(c1 - c0).count();

  std::printf("capd-bench: %zu mints over a Unix socket, %ld registry checks (%zu grants held)\n",
              latencyUs.size(), checks, registry.size());
  std::printf("%-34s %12s %12s %12s\n", "figure", "measured", "target", "ratio");
  double p50 = percentile(latencyUs, 0.50), p99 = percentile(latencyUs, 0.99);
  double perSec = static_cast<double>(checks) / seconds;
  std::printf("%-34s %10.1f us %10.1f us %11.2fx\n", "mint latency p50", p50, 1000.0, 1000.0 / p50);
  std::printf("%-34s %10.1f us %10.1f us %11.2fx\n", "mint latency p99", p99, 1000.0, 1000.0 / p99);
  std::printf("%-34s %10.2f M/s %9.2f M/s %11.2fx\n", "grant checks per second", perSec / 1e6, 1.0, perSec / 1e6);
  std::printf("(ratio = target / measured for latency, measured / target for throughput; > 1 meets the target)\n");
  (void)allowed;
  return 0;
}

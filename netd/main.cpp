// netd: the network daemon. main parses arguments, opens the device as root, binds its two sockets,
// drops privileges, and runs the library (netd/server/netd-server.h) on one KJ event loop.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/cli.h"
#include "common/audit.h"
#include "common/clock.h"
#include "common/cpu-profile.h"
#include "common/privileges.h"
#include "common/rpc-server.h"
#include "netd/server/netd-server.h"
#include "netd/server/null-stack.h"
#include "netd/stack/lwip-stack.h"
#include "netd/tls/wolf-tls.h"
#include "common/paths.h"
#include "netd/virtio-link.h"

namespace {

constexpr const char* kUsage =
    "usage: netd --control-socket PATH --capd-uid N --socket PATH [--uid N --gid N] [--vfio auto|none|PCI-ADDR]\n"
    "            [--max-connections N]   TCP connections the stack holds at once (default 48; each TLS\n"
    "                                    connection costs netd about 350 KiB: size it to the guest's memory)\n"
    "            [--cpu-profile]         SIGUSR2 starts sampling netd's CPU, the next SIGUSR2 prints the\n"
    "                                    samples (common/cpu-profile.h; the bench profile uses it)\n";


}  // namespace

int main(int argc, char** argv) {
  if (int rc = capnet::cli::standardFlags(argc, argv, "netd", kUsage); rc >= 0) return rc;
  std::string controlPath, appPath, vfio = "auto";
  unsigned long long capdUid = 0, uid = 0, gid = 0;
  bool haveCapd = false, drop = false, haveGid = false, cpuProfile = false;
  unsigned long long maxConnections = capnet::LwipLimits{}.maxConnections;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (a == "--cpu-profile") {
      cpuProfile = true;
      continue;
    }
    if (v == nullptr) {
      std::fprintf(stderr, "netd: %s needs a value\n%s", a.c_str(), kUsage);
      return 2;
    }
    ++i;
    if (a == "--control-socket") {
      controlPath = v;
    } else if (a == "--socket") {
      appPath = v;
    } else if (a == "--vfio") {
      vfio = v;
    } else if (a == "--max-connections" && capnet::cli::parseUint(v, 4096, maxConnections) && maxConnections > 0) {
      // parsed
    } else if (a == "--capd-uid" && capnet::cli::parseUint(v, 4294967294ul, capdUid)) {
      haveCapd = true;
    } else if (a == "--uid" && capnet::cli::parseUint(v, 4294967294ul, uid)) {
      drop = true;
    } else if (a == "--gid" && capnet::cli::parseUint(v, 4294967294ul, gid)) {
      haveGid = true;
    } else {
      std::fprintf(stderr, "netd: bad argument %s %s\n%s", a.c_str(), v, kUsage);
      return 2;
    }
  }
  if (controlPath.empty() || appPath.empty() || !haveCapd) {
    std::fprintf(stderr, "netd: --control-socket, --socket and --capd-uid are required\n%s", kUsage);
    return 2;
  }
  if (drop && !haveGid) gid = uid;
  ::signal(SIGPIPE, SIG_IGN);
  if (cpuProfile) capnet::captureProfileSignals();   // before the audit thread starts
  capnet::startAsyncAudit();   // a slow console never blocks the event loop.

  auto io = kj::setupAsyncIo();
  kj::Promise<void> profiling = kj::READY_NOW;
  if (cpuProfile) {
    profiling = capnet::serveCpuProfile(io.unixEventPort, "netd").eagerlyEvaluate([](kj::Exception&& e) {
      capnet::audit("netd", "cpu-profile-stopped", {{"detail", e.getDescription().cStr()}});
    });
  }
  capnet::SystemClock clock;
  // The OS stack: lwIP over the VFIO-owned virtio-net device when both are available.
  // The OS stack: lwIP over the virtio-net device that init gave to vfio-pci, opened here as root
  // (VFIO, DMA mappings and MSI-X are set up before privileges are dropped). Without it netd still
  // serves, and every real connect is refused as no-os-stack with the reason.
  std::unique_ptr<capnet::VirtioLink> link;
  kj::Own<capnet::TcpStack> stack;
  if (vfio == "none") {
    stack = kj::heap<capnet::NullStack>("no NIC (--vfio none)");
  } else {
    auto where = capnet::virtio::discoverNic("/sys", vfio == "auto" ? "" : vfio);
    if (!where.ok()) {
      stack = kj::heap<capnet::NullStack>(where.message());
    } else {
      auto nic = capnet::virtio::VirtioNet::open(where.value());
      if (!nic.ok()) {
        stack = kj::heap<capnet::NullStack>("virtio-net " + where->address + ": " + nic.message());
      } else {
        link = std::make_unique<capnet::VirtioLink>(std::move(nic).value());
        capnet::audit("netd", "nic", {{"device", link->nic().describe()}});
        stack = kj::heap<capnet::LwipStack>(io.unixEventPort, io.provider->getTimer(), *link, capnet::Ipv4Config{},
                                            capnet::LwipLimits{static_cast<size_t>(maxConnections)});
      }
    }
  }
  if (!stack->up()) capnet::audit("netd", "stack unavailable", {{"reason", stack->detail()}});
  kj::Promise<void> stackRunning = kj::READY_NOW;
  if (auto* lwip = dynamic_cast<capnet::LwipStack*>(stack.get())) {
    stackRunning = lwip->run().eagerlyEvaluate([](kj::Exception&& e) {
      capnet::audit("netd", "stack stopped", {{"detail", e.getDescription().cStr()}});
    });
  }

  // TLS roots: the trust store's two directories, pkg://trust/ (shipped) and state:/trust/installed/.
  capnet::WolfTlsWrapper tls(io.provider->getTimer(), clock, capnet::Roots{});
  capnet::Netd netd(clock, io.provider->getTimer(), *stack, static_cast<uid_t>(capdUid), &tls);
  capnet::RpcLimits controlLimits;
  controlLimits.maxConnections = 4;
  capnet::UnixRpcServer control(*io.provider, "netd", controlLimits,
                                [&netd](const capnet::PeerCredentials& p) { return netd.controlFor(p.uid); });
  capnet::RpcLimits appLimits;
  appLimits.traversalLimitInWords = 1u << 15;   // a write carries at most 64 KiB.
  capnet::UnixRpcServer apps(*io.provider, "netd", appLimits,
                             [&netd](const capnet::PeerCredentials& p) -> kj::Maybe<capnp::Capability::Client> {
                               if (!netd.servesApp(p.uid)) {
                                 capnet::audit("netd", "refuse-connection",
                                               {{"reason", "not-a-principal"}, {"uid", std::to_string(p.uid)}});
                                 return nullptr;
                               }
                               return capnp::Capability::Client(netd.netConnectFor(p.uid));
                             });
  netd.setLimitsObserver([&apps, appLimits](const capnet::NetdLimits& l) {
    apps.setLimits(capnet::withPeerCaps(appLimits, l.connectionsPerUid, l.firstCallDeadlineMs));
  });
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                control.bind(controlPath, 0600).wait(io.waitScope);
                apps.bind(appPath, 0666).wait(io.waitScope);
              })) {
    std::fprintf(stderr, "netd: cannot bind sockets: %s\n", e->getDescription().cStr());
    return 1;
  }
  // The control socket belongs to capd's uid: the kernel refuses everyone else at connect(), and
  // netd checks SO_PEERCRED again at accept.
  if (::chown(controlPath.c_str(), static_cast<uid_t>(capdUid), static_cast<gid_t>(-1)) != 0 && geteuid() == 0) {
    std::perror("netd: chown control socket");
    return 1;
  }
  if (drop) {
    auto dropped = capnet::dropPrivileges(static_cast<uid_t>(uid), static_cast<gid_t>(gid));
    if (!dropped.ok()) {
      std::fprintf(stderr, "netd: %s\n", dropped.message().c_str());
      return 1;
    }
  }
  capnet::audit("netd", "ready", {{"socket", appPath}, {"control", controlPath}, {"stack", stack->up() ? "up" : "down"},
                                  {"detail", stack->detail()}});
  // Expired grants are swept and streams past grants.maxStreamMs closed, once a second.
  auto housekeeping = netd.housekeeping().eagerlyEvaluate([](kj::Exception&& e) {
    capnet::audit("netd", "housekeeping-stopped", {{"detail", e.getDescription().cStr()}});
  });
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { kj::joinPromises(kj::arr(control.run(), apps.run())).wait(io.waitScope); })) {
    std::fprintf(stderr, "netd: server stopped: %s\n", e->getDescription().cStr());
    return 1;
  }
  return 0;
}

// netd: the network daemon. main parses arguments, opens the device as root, binds its two sockets,
// drops privileges, and runs the library (netd/server/netd-server.h) on one KJ event loop.
#include <signal.h>
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/audit.h"
#include "common/clock.h"
#include "common/privileges.h"
#include "common/rpc-server.h"
#include "netd/server/netd-server.h"
#include "netd/server/null-stack.h"

namespace {

// The PCI address of a virtio-net device (1af4:1041) bound to vfio-pci, or "" when there is none.
std::string findVfioNic() {
  DIR* dir = ::opendir("/sys/bus/pci/devices");
  if (dir == nullptr) return "";
  std::string found;
  while (dirent* e = ::readdir(dir)) {
    std::string base = std::string("/sys/bus/pci/devices/") + e->d_name;
    auto readLine = [](const std::string& path) {
      std::string s;
      if (FILE* f = std::fopen(path.c_str(), "r")) {
        char buf[64] = {};
        if (std::fgets(buf, sizeof(buf), f)) s = buf;
        std::fclose(f);
      }
      while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
      return s;
    };
    char link[256] = {};
    ssize_t n = ::readlink((base + "/driver").c_str(), link, sizeof(link) - 1);
    std::string driver = n > 0 ? std::string(link, static_cast<size_t>(n)) : "";
    if (readLine(base + "/vendor") == "0x1af4" && readLine(base + "/device") == "0x1041" &&
        driver.size() >= 9 && driver.compare(driver.size() - 9, 9, "/vfio-pci") == 0) {
      found = e->d_name;
      break;
    }
  }
  ::closedir(dir);
  return found;
}

constexpr const char* kUsage =
    "usage: netd --control-socket PATH --capd-uid N --socket PATH [--uid N --gid N] [--vfio auto|none|PCI-ADDR]\n";

bool parseUint(const char* s, unsigned long max, unsigned long& out) {
  if (s == nullptr || *s == '\0' || *s == '-') return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoul(s, &end, 10);
  return errno == 0 && *end == '\0' && out <= max;
}

}  // namespace

int main(int argc, char** argv) {
  std::string controlPath, appPath, vfio = "auto";
  unsigned long capdUid = 0, uid = 0, gid = 0;
  bool haveCapd = false, drop = false, haveGid = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
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
    } else if (a == "--capd-uid" && parseUint(v, 4294967294ul, capdUid)) {
      haveCapd = true;
    } else if (a == "--uid" && parseUint(v, 4294967294ul, uid)) {
      drop = true;
    } else if (a == "--gid" && parseUint(v, 4294967294ul, gid)) {
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

  auto io = kj::setupAsyncIo();
  capnet::SystemClock clock;
  // The OS stack: lwIP over the VFIO-owned virtio-net device when both are available.
  std::string nic = vfio == "auto" ? findVfioNic() : (vfio == "none" ? "" : vfio);
  kj::Own<capnet::TcpStack> stack = kj::heap<capnet::NullStack>(
      nic.empty() ? "no virtio-net device bound to vfio-pci"
                  : "NIC " + nic + " present, but lwIP over virtio-net is not built into this netd");
  if (!stack->up()) capnet::audit("netd", "stack unavailable", {{"reason", stack->detail()}});

  capnet::Netd netd(clock, io.provider->getTimer(), *stack, static_cast<uid_t>(capdUid));
  capnet::RpcLimits controlLimits;
  controlLimits.maxConnections = 4;
  capnet::UnixRpcServer control(*io.provider, "netd", controlLimits,
                                [&netd](const capnet::PeerCredentials& p) { return netd.controlFor(p.uid); });
  capnet::RpcLimits appLimits;
  appLimits.traversalLimitInWords = 1u << 15;   // a write carries at most 64 KiB.
  capnet::UnixRpcServer apps(*io.provider, "netd", appLimits,
                             [&netd](const capnet::PeerCredentials& p) -> kj::Maybe<capnp::Capability::Client> {
                               return capnp::Capability::Client(netd.netConnectFor(p.uid));
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
  capnet::audit("netd", "ready", {{"socket", appPath}, {"control", controlPath}, {"stack", stack->up() ? "up" : "down"}});
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { kj::joinPromises(kj::arr(control.run(), apps.run())).wait(io.waitScope); })) {
    std::fprintf(stderr, "netd: server stopped: %s\n", e->getDescription().cStr());
    return 1;
  }
  return 0;
}

// The network benchmark (profile `bench`, run by scripts/bench-net.sh, not part of CI's pass/fail):
// in one guest boot, netd's path (an app's RPC to netd, lwIP over the VFIO-owned NIC) and the guest
// kernel's own TCP path (a second virtio-net device on the kernel's virtio_net driver) talk to the
// same host fixture. Prints connect latency p50/p99 and bulk echo throughput for each, side by side,
// with their ratios.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "selftest/selftest.h"

namespace capnet::selftest {
namespace {

constexpr const char* kHost = "devnet.test";
constexpr const char* kHostAddress = "10.0.2.100";
constexpr uint16_t kEchoPort = 7;
constexpr int kConnects = 100;
constexpr size_t kBulkBytes = 4u << 20;

using Clock = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Figures {
  std::vector<double> connectMs;
  double bulkMBps = 0;
  std::string error;
};

// Kernel path: POSIX sockets over the guest kernel's virtio_net.
Figures kernelPath() {
  Figures f;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(kEchoPort);
  inet_pton(AF_INET, kHostAddress, &addr.sin_addr);
  for (int i = 0; i < kConnects; ++i) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto t0 = Clock::now();
    if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      f.error = std::string("kernel connect: ") + std::strerror(errno);
      ::close(s);
      return f;
    }
    f.connectMs.push_back(ms(Clock::now() - t0));
    ::close(s);
  }
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    f.error = "kernel bulk connect failed";
    ::close(s);
    return f;
  }
  std::vector<char> out(kBulkBytes, 'x'), in(65536);
  size_t sent = 0, got = 0;
  auto t0 = Clock::now();
  while (got < kBulkBytes) {
    pollfd p{s, static_cast<short>(POLLIN | (sent < kBulkBytes ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, 10000) <= 0) {
      f.error = "kernel bulk stalled";
      break;
    }
    if ((p.revents & POLLOUT) && sent < kBulkBytes) {
      ssize_t n = ::send(s, out.data() + sent, std::min<size_t>(65536, kBulkBytes - sent), MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
    }
    if (p.revents & POLLIN) {
      ssize_t n = ::recv(s, in.data(), in.size(), 0);
      if (n <= 0) {
        f.error = "kernel bulk: echo ended early";
        break;
      }
      got += static_cast<size_t>(n);
    }
  }
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  f.bulkMBps = static_cast<double>(got) / seconds / 1e6;
  ::close(s);
  return f;
}

// netd path: the same exchange through capd's grant and netd's byte stream.
Figures netdPath(Context& ctx) {
  Figures f;
  Session capd(ctx.io, ctx.paths.capd, kSelftestUid);
  Session netd(ctx.io, ctx.paths.netd, kSelftestUid);
  if (!capd.ok() || !netd.ok()) {
    f.error = "cannot reach capd or netd";
    return f;
  }
  auto req = capd.as<idl::Broker>().requestGrantRequest();
  auto scope = req.initScope();
  scope.setScheme("tcp");
  scope.setHost(kHost);
  scope.setPort(kEchoPort);
  auto grant = req.send().wait(ctx.io.waitScope);
  if (!grant.getResult().isGranted()) {
    f.error = "no grant";
    return f;
  }
  auto token = kj::heapArray<kj::byte>(grant.getResult().getGranted().getToken());
  auto net = netd.as<idl::NetConnect>();
  auto connect = [&]() -> kj::Maybe<idl::ByteStream::Client> {
    auto c = net.connectRequest();
    c.setGrant(token);
    c.setHost(kHost);
    c.setPort(kEchoPort);
    auto r = c.send().wait(ctx.io.waitScope);
    if (!r.getResult().isConnected()) return nullptr;
    return r.getResult().getConnected().getStream();
  };
  auto maybeStream = connect();
  KJ_IF_MAYBE(s, maybeStream) {
    auto stream = *s;
    std::vector<kj::byte> chunk(65536, 'x');
    size_t sent = 0, got = 0;
    auto t0 = Clock::now();
    kj::Maybe<kj::Promise<void>> writing;
    while (got < kBulkBytes) {
      if (writing == nullptr && sent < kBulkBytes) {
        auto w = stream.writeRequest();
        size_t n = std::min<size_t>(chunk.size(), kBulkBytes - sent);
        w.setData(kj::arrayPtr(chunk.data(), n));
        writing = w.send().ignoreResult().eagerlyEvaluate(nullptr);
        sent += n;
      }
      auto r = stream.readRequest();
      r.setMaxBytes(65536);
      auto resp = r.send().wait(ctx.io.waitScope);
      if (resp.getEof()) {
        f.error = "netd bulk: echo ended early";
        break;
      }
      got += resp.getData().size();
      KJ_IF_MAYBE(w, writing) {
        if (w->poll(ctx.io.waitScope)) {
          w->wait(ctx.io.waitScope);
          writing = nullptr;
        }
      }
    }
    double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    f.bulkMBps = static_cast<double>(got) / seconds / 1e6;
  } else {
    f.error = "netd bulk connect refused";
  }
  for (int i = 0; i < kConnects; ++i) {
    auto t0 = Clock::now();
    auto stream = connect();
    if (stream == nullptr) {
      f.error = "netd connect refused";
      return f;
    }
    f.connectMs.push_back(ms(Clock::now() - t0));
    KJ_IF_MAYBE(s, stream) { s->closeRequest().send().wait(ctx.io.waitScope); }
  }
  return f;
}

Report bench(Context& ctx) {
  Figures kernel = kernelPath();
  Figures netd = netdPath(ctx);
  if (!kernel.error.empty()) return Report{Outcome::kFail, kernel.error};
  if (!netd.error.empty()) return Report{Outcome::kFail, netd.error};
  double n50 = percentile(netd.connectMs, 0.5), n99 = percentile(netd.connectMs, 0.99);
  double k50 = percentile(kernel.connectMs, 0.5), k99 = percentile(kernel.connectMs, 0.99);
  std::printf("bench: %-28s %12s %12s %10s\n", "figure (one boot, TCG)", "netd", "kernel", "netd/kernel");
  std::printf("bench: %-28s %9.2f ms %9.2f ms %9.2fx\n", "connect latency p50", n50, k50, n50 / k50);
  std::printf("bench: %-28s %9.2f ms %9.2f ms %9.2fx\n", "connect latency p99", n99, k99, n99 / k99);
  std::printf("bench: %-28s %7.2f MB/s %7.2f MB/s %9.2fx\n", "bulk echo throughput (4 MiB)", netd.bulkMBps,
              kernel.bulkMBps, netd.bulkMBps / kernel.bulkMBps);
  std::fflush(stdout);
  return Report{Outcome::kOk, ""};
}

}  // namespace

std::vector<Scenario> benchScenarios(const std::string& profile) {
  if (profile == "bench") return {{"net bench", bench}};
  return {};
}

}  // namespace capnet::selftest

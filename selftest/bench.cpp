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

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "fetchd/fetch-client.h"
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

constexpr int kHandshakes = 20;
constexpr uint16_t kTlsPort = 443;
constexpr const char* kRoot = "/pkg/trust/capnet-test-root.pem";

struct TlsFigures {
  double handshakesPerSec = 0;
  double bulkMBps = 0;
  std::string error;
};

// Kernel path with the same wolfSSL: TLS 1.3 over a POSIX socket on the kernel's virtio_net.
TlsFigures kernelTls() {
  TlsFigures f;
  WOLFSSL_CTX* ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
  if (ctx == nullptr || wolfSSL_CTX_load_verify_locations(ctx, kRoot, nullptr) != WOLFSSL_SUCCESS) {
    f.error = "kernel tls: cannot load the root";
    if (ctx) wolfSSL_CTX_free(ctx);
    return f;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(kTlsPort);
  inet_pton(AF_INET, kHostAddress, &addr.sin_addr);
  auto session = [&](const char* path, size_t* bodyBytes) -> bool {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(s);
      return false;
    }
    WOLFSSL* ssl = wolfSSL_new(ctx);
    wolfSSL_set_fd(ssl, s);
    wolfSSL_check_domain_name(ssl, kHost);
    bool ok = wolfSSL_connect(ssl) == WOLFSSL_SUCCESS;
    if (ok && bodyBytes != nullptr) {
      std::string req = std::string("GET ") + path + " HTTP/1.1\r\nHost: devnet.test\r\n\r\n";
      wolfSSL_write(ssl, req.data(), static_cast<int>(req.size()));
      char buf[16384];
      int n;
      while ((n = wolfSSL_read(ssl, buf, sizeof(buf))) > 0) *bodyBytes += static_cast<size_t>(n);
    }
    wolfSSL_free(ssl);
    ::close(s);
    return ok;
  };
  auto t0 = Clock::now();
  for (int i = 0; i < kHandshakes; ++i) {
    if (!session("/", nullptr)) {
      f.error = "kernel tls handshake failed";
      wolfSSL_CTX_free(ctx);
      return f;
    }
  }
  f.handshakesPerSec = kHandshakes / std::chrono::duration<double>(Clock::now() - t0).count();
  size_t bytes = 0;
  auto b0 = Clock::now();
  session("/large", &bytes);
  f.bulkMBps = static_cast<double>(bytes) / std::chrono::duration<double>(Clock::now() - b0).count() / 1e6;
  if (bytes < (4u << 20)) f.error = "kernel https bulk: short body";
  wolfSSL_CTX_free(ctx);
  return f;
}

// netd path: TLS handshakes through netd (grant, connect with useTls), and a 4 MiB HTTPS body
// through fetchd.
TlsFigures netdTls(Context& ctx) {
  TlsFigures f;
  Session capd(ctx.io, ctx.paths.capd, kSelftestUid);
  Session netd(ctx.io, ctx.paths.netd, kSelftestUid);
  if (!capd.ok() || !netd.ok()) {
    f.error = "cannot reach capd or netd";
    return f;
  }
  auto req = capd.as<idl::Broker>().requestGrantRequest();
  auto scope = req.initScope();
  scope.setScheme("tls");
  scope.setHost(kHost);
  scope.setPort(kTlsPort);
  auto grant = req.send().wait(ctx.io.waitScope);
  if (!grant.getResult().isGranted()) {
    f.error = "no tls grant";
    return f;
  }
  auto token = kj::heapArray<kj::byte>(grant.getResult().getGranted().getToken());
  auto t0 = Clock::now();
  for (int i = 0; i < kHandshakes; ++i) {
    auto c = netd.as<idl::NetConnect>().connectRequest();
    c.setGrant(token);
    c.setHost(kHost);
    c.setPort(kTlsPort);
    c.setUseTls(true);
    auto r = c.send().wait(ctx.io.waitScope);
    if (!r.getResult().isConnected()) {
      f.error = std::string("netd tls handshake refused: ") + r.getResult().getRefused().getDetail().cStr();
      return f;
    }
    r.getResult().getConnected().getStream().closeRequest().send().wait(ctx.io.waitScope);
  }
  f.handshakesPerSec = kHandshakes / std::chrono::duration<double>(Clock::now() - t0).count();
  // Bulk through the app path: fetchd's https fetch, body streamed to a sink.
  Session fetchd(ctx.io, ctx.paths.fetchd, kSelftestUid);
  if (!fetchd.ok()) {
    f.error = "cannot reach fetchd";
    return f;
  }
  uint64_t bytes = 0;
  kj::Array<kj::byte> ticket;
  {
    Session capd(ctx.io, ctx.paths.capd, kSelftestUid);
    if (capd.ok()) ticket = fetchTicket(capd.as<idl::Broker>(), "https://devnet.test/large").wait(ctx.io.waitScope);
  }
  auto fr = fetchd.as<idl::Fetcher>().fetchRequest();
  fr.initRequest().setUrl("https://devnet.test/large");
  fr.getRequest().setTicket(ticket);
  fr.setSink(kj::heap<BodyCollector>(BodyCollector::Into{.bytes = &bytes}));
  auto b0 = Clock::now();
  auto resp = fr.send().wait(ctx.io.waitScope);
  f.bulkMBps = static_cast<double>(bytes) / std::chrono::duration<double>(Clock::now() - b0).count() / 1e6;
  if (resp.getResult().isRefused()) f.error = std::string("netd https bulk refused: ") + resp.getResult().getRefused().getDetail().cStr();
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
  TlsFigures kt = kernelTls();
  TlsFigures nt = netdTls(ctx);
  if (!kt.error.empty()) return Report{Outcome::kFail, kt.error};
  if (!nt.error.empty()) return Report{Outcome::kFail, nt.error};
  std::printf("bench: %-28s %9.2f /s %9.2f /s %9.2fx\n", "TLS 1.3 handshakes", nt.handshakesPerSec, kt.handshakesPerSec,
              nt.handshakesPerSec / kt.handshakesPerSec);
  std::printf("bench: %-28s %7.2f MB/s %7.2f MB/s %9.2fx\n", "HTTPS bulk download (4 MiB)", nt.bulkMBps, kt.bulkMBps,
              nt.bulkMBps / kt.bulkMBps);
  std::fflush(stdout);
  return Report{Outcome::kOk, ""};
}

}  // namespace

std::vector<Scenario> benchScenarios(const std::string& profile) {
  if (profile == "bench") return {{"net bench", bench}};
  return {};
}

}  // namespace capnet::selftest

// The network benchmark (profile `bench`, run by scripts/bench-net.sh, not part of CI's pass/fail):
// in one guest boot, netd's path (an app's RPC to netd, lwIP over the VFIO-owned NIC) and the guest
// kernel's own TCP path (a second virtio-net device on the kernel's virtio_net driver) talk to the
// same host fixtures. Each figure is printed as one line
//   bench: figure=KEY netd=V kernel=V unit=U target=T label="..."
// which scripts/bench-net.sh turns into the table (ratio, target, met) or JSON (--json).
// Figures: connect p50/p99, upload and download throughput (tcp-bulk), download throughput with 16
// and 64 concurrent connections, echo throughput, TLS 1.3 handshakes per second, HTTPS download
// through fetchd (the kernel path: the same wolfSSL over a socket), netd's memory per idle TLS
// connection.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <kj/vector.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "common/file.h"
#include "fetchd/fetch-client.h"
#include "selftest/selftest.h"

namespace capnet::selftest {
namespace {

constexpr const char* kHost = "devnet.test";
constexpr const char* kHostAddress = "10.0.2.100";
constexpr uint16_t kEchoPort = 7;
constexpr uint16_t kBulkPort = 9;   // tcp-bulk: 'U' or 'D' and a length, then the bytes one way
constexpr int kConnects = 100;
constexpr size_t kBulkBytes = 4u << 20;
constexpr int kIdleTlsConnections = 32;

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

// A kernel TCP connection to the fixture host's `port`, or -1 (errno says why). `took`, when
// given, is the connect call alone (the socket is made before the clock starts).
int kernelConnect(uint16_t port, Clock::duration* took = nullptr) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, kHostAddress, &addr.sin_addr);
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto t0 = Clock::now();
  if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    ::close(s);
    errno = e;
    return -1;
  }
  if (took != nullptr) *took = Clock::now() - t0;
  return s;
}

// Kernel path: POSIX sockets over the guest kernel's virtio_net.
Figures kernelPath() {
  Figures f;
  for (int i = 0; i < kConnects; ++i) {
    Clock::duration took{};
    int s = kernelConnect(kEchoPort, &took);
    if (s < 0) {
      f.error = std::string("kernel connect: ") + std::strerror(errno);
      return f;
    }
    f.connectMs.push_back(ms(took));
    ::close(s);
  }
  int s = kernelConnect(kEchoPort);
  if (s < 0) {
    f.error = "kernel bulk connect failed";
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

// Handshakes: kHandshakeRounds rounds of kHandshakesPerRound on each path in turn, so that a change
// in the machine's speed during the phase (it is shared) weighs on both paths alike.
constexpr int kHandshakeRounds = 5;
constexpr int kHandshakesPerRound = 8;
constexpr uint16_t kTlsPort = 443;
constexpr const char* kRoot = "/pkg/trust/capnet-test-root.pem";

// Kernel path with the same wolfSSL: TLS 1.3 over a POSIX socket on the kernel's virtio_net.
class KernelTls {
 public:
  KernelTls() : ctx_(wolfSSL_CTX_new(wolfTLSv1_3_client_method())) {
    ok_ = ctx_ != nullptr && wolfSSL_CTX_load_verify_locations(ctx_, kRoot, nullptr) == WOLFSSL_SUCCESS;
  }
  ~KernelTls() {
    if (ctx_ != nullptr) wolfSSL_CTX_free(ctx_);
  }
  KernelTls(const KernelTls&) = delete;
  KernelTls& operator=(const KernelTls&) = delete;
  bool ok() const { return ok_; }

  // One connection: the handshake (verified against the test root), and with `bodyBytes` a GET of
  // `path` read to the end.
  bool session(const char* path, size_t* bodyBytes) {
    int s = kernelConnect(kTlsPort);
    if (s < 0) return false;
    WOLFSSL* ssl = wolfSSL_new(ctx_);
    // Configured as netd's client is (netd/tls/wolf-tls.cpp): X25519 first, and FP_ECC's cache
    // released after each connection, so the figure compares the paths, not two configurations.
    int groups[] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1};
    if (wolfSSL_set_groups(ssl, groups, 3) != WOLFSSL_SUCCESS || wolfSSL_UseKeyShare(ssl, WOLFSSL_ECC_X25519) != WOLFSSL_SUCCESS) {
      wolfSSL_free(ssl);   // not a comparison of the same configurations: fail the figure
      ::close(s);
      return false;
    }
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
#ifdef FP_ECC
    wc_ecc_fp_free();
#endif
    ::close(s);
    return ok;
  }

  // The 4 MiB body over one connection: MB/s, or 0.
  double bulk() {
    size_t bytes = 0;
    auto b0 = Clock::now();
    session("/large", &bytes);
    if (bytes < (4u << 20)) return 0;
    return static_cast<double>(bytes) / std::chrono::duration<double>(Clock::now() - b0).count() / 1e6;
  }

 private:
  WOLFSSL_CTX* ctx_;
  bool ok_ = false;
};

// netd's side: streams from NetConnect.connect under one grant per port.
class NetdStreams {
 public:
  explicit NetdStreams(Context& ctx) : ctx_(ctx), netd_(ctx.io, ctx.paths.netd, kSelftestUid) {}
  bool ok() const { return netd_.ok(); }

  kj::Maybe<idl::ByteStream::Client> connect(const char* scheme, uint16_t port) {
    std::string key = std::string(scheme) + ":" + std::to_string(port);
    auto found = std::find_if(grants_.begin(), grants_.end(), [&](auto& g) { return g.first == key; });
    if (found == grants_.end()) {
      auto g = requestGrant(ctx_, kSelftestUid, scheme, kHost, port);
      if (!g.ok) return nullptr;
      grants_.add(key, kj::mv(g.token));
      found = grants_.end() - 1;
    }
    auto c = netd_.as<idl::NetConnect>().connectRequest();
    c.setGrant(found->second);
    c.setHost(kHost);
    c.setPort(port);
    c.setUseTls(std::string(scheme) == "tls");
    auto r = c.send().wait(ctx_.io.waitScope);
    if (!r.getResult().isConnected()) return nullptr;
    return r.getResult().getConnected().getStream();
  }

 private:
  Context& ctx_;
  Session netd_;
  kj::Vector<std::pair<std::string, kj::Array<kj::byte>>> grants_;
};

// netd path: one TLS handshake through netd (the grant, connect with useTls, netd's validation),
// then the stream closed.
bool netdHandshake(Context& ctx, NetdStreams& streams) {
  KJ_IF_MAYBE(stream, streams.connect("tls", kTlsPort)) {
    stream->closeRequest().send().wait(ctx.io.waitScope);
    return true;
  }
  return false;
}

// Handshakes per second on each path, measured in alternating rounds.
struct HandshakeRates {
  double kernel = 0, netd = 0;
  std::string error;
};
HandshakeRates handshakes(Context& ctx, KernelTls& kernel, NetdStreams& streams) {
  HandshakeRates r;
  double kernelSeconds = 0, netdSeconds = 0;
  // Each batch timed alone; the order alternates by round, so that what one batch leaves behind on
  // the host (fixture processes exiting) weighs on both paths alike.
  auto kernelBatch = [&]() {
    auto t0 = Clock::now();
    for (int i = 0; i < kHandshakesPerRound; ++i) {
      if (!kernel.session("/", nullptr)) {
        r.error = "kernel tls handshake failed";
        return false;
      }
    }
    kernelSeconds += std::chrono::duration<double>(Clock::now() - t0).count();
    return true;
  };
  auto netdBatch = [&]() {
    auto t0 = Clock::now();
    for (int i = 0; i < kHandshakesPerRound; ++i) {
      if (!netdHandshake(ctx, streams)) {
        r.error = "netd tls handshake refused (or no grant)";
        return false;
      }
    }
    netdSeconds += std::chrono::duration<double>(Clock::now() - t0).count();
    return true;
  };
  for (int round = 0; round < kHandshakeRounds; ++round) {
    const bool ok = round % 2 == 0 ? kernelBatch() && netdBatch() : netdBatch() && kernelBatch();
    if (!ok) return r;
  }
  r.kernel = kHandshakeRounds * kHandshakesPerRound / kernelSeconds;
  r.netd = kHandshakeRounds * kHandshakesPerRound / netdSeconds;
  return r;
}

// netd path for the HTTPS body: fetchd's https fetch of 4 MiB, streamed to a sink (MB/s), or an error.
std::pair<double, std::string> fetchdHttps(Context& ctx) {
  Session fetchd(ctx.io, ctx.paths.fetchd, kSelftestUid);
  if (!fetchd.ok()) return {0, "cannot reach fetchd"};
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
  const double mbps = static_cast<double>(bytes) / std::chrono::duration<double>(Clock::now() - b0).count() / 1e6;
  if (resp.getResult().isRefused()) return {0, std::string("netd https bulk refused: ") + resp.getResult().getRefused().getDetail().cStr()};
  if (bytes < (4u << 20)) return {0, "netd https bulk: short body"};
  return {mbps, ""};
}

// netd path: the same exchange through capd's grant and netd's byte stream.
Figures netdPath(Context& ctx) {
  Figures f;
  NetdStreams streams(ctx);
  auto connect = [&]() { return streams.connect("tcp", kEchoPort); };
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

// ---- One direction at a time: tcp-bulk (upload: the fixture reads N bytes and answers N; download:
// it writes N bytes and closes) -----------------------------------------------------------------

std::string bulkRequest(char mode, uint64_t n) {
  std::string r(9, '\0');
  r[0] = mode;
  for (int i = 0; i < 8; ++i) r[static_cast<size_t>(1 + i)] = static_cast<char>((n >> (56 - 8 * i)) & 0xff);
  return r;
}

double mbps(uint64_t bytes, Clock::duration d) { return static_cast<double>(bytes) / std::chrono::duration<double>(d).count() / 1e6; }

bool sendAll(int s, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(s, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Kernel upload: MB/s from the first byte to the fixture's count; 0 on failure.
double kernelUpload(uint64_t bytes) {
  int s = kernelConnect(kBulkPort);
  if (s < 0) return 0;
  std::vector<char> chunk(65536, 'x');
  auto t0 = Clock::now();
  bool ok = sendAll(s, bulkRequest('U', bytes).data(), 9);
  for (uint64_t sent = 0; ok && sent < bytes; sent += std::min<uint64_t>(chunk.size(), bytes - sent)) {
    ok = sendAll(s, chunk.data(), static_cast<size_t>(std::min<uint64_t>(chunk.size(), bytes - sent)));
  }
  unsigned char ack[8];
  size_t got = 0;
  while (ok && got < sizeof(ack)) {
    ssize_t r = ::recv(s, ack + got, sizeof(ack) - got, 0);
    if (r <= 0) ok = false;
    else got += static_cast<size_t>(r);
  }
  auto d = Clock::now() - t0;
  ::close(s);
  uint64_t counted = 0;
  for (unsigned char b : ack) counted = (counted << 8) | b;
  return ok && counted == bytes ? mbps(bytes, d) : 0;
}

// Kernel download over `n` connections at once, `each` bytes per connection: aggregate MB/s.
double kernelDownload(int n, uint64_t each) {
  std::vector<int> socks;
  for (int i = 0; i < n; ++i) {
    int s = kernelConnect(kBulkPort);
    if (s < 0) break;
    socks.push_back(s);
  }
  double out = 0;
  if (static_cast<int>(socks.size()) == n) {
    std::vector<uint64_t> got(socks.size(), 0);
    std::vector<pollfd> fds;
    auto t0 = Clock::now();
    bool ok = true;
    for (int s : socks) {
      ok = ok && sendAll(s, bulkRequest('D', each).data(), 9);
      fds.push_back(pollfd{s, POLLIN, 0});
    }
    size_t open = socks.size();
    std::vector<char> buf(65536);
    while (ok && open > 0) {
      if (::poll(fds.data(), fds.size(), 10000) <= 0) {
        ok = false;
        break;
      }
      for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t r = ::recv(fds[i].fd, buf.data(), buf.size(), 0);
        if (r > 0) {
          got[i] += static_cast<uint64_t>(r);
        } else {
          fds[i].fd = -1;
          --open;
        }
      }
    }
    uint64_t total = 0;
    for (auto g : got) total += g;
    if (ok && total == each * socks.size()) out = mbps(total, Clock::now() - t0);
  }
  for (int s : socks) ::close(s);
  return out;
}


kj::Promise<void> writeBytes(idl::ByteStream::Client s, kj::ArrayPtr<const kj::byte> data) {
  auto w = s.writeRequest();
  w.setData(data);
  return w.send().ignoreResult();
}

// Reads until EOF (or `want` bytes), counting into `got`, with `lanes` reads of `chunk` bytes in
// flight (netd answers a stream's reads in order), as fetchd reads: the app path's way to keep data
// flowing. What all streams of one RPC connection have in flight stays under 1 MiB: netd cuts a
// peer that leaves more than 2 MiB of answers unread (common/rpc-server.h).
// Read answers the app received (all streams): with the bytes moved, the mean answer's size.
uint64_t gReadAnswers = 0;

struct Reader {
  idl::ByteStream::Client stream;
  uint64_t* got;
  uint64_t want;
  uint32_t chunk;
  bool eof = false;
  kj::Promise<void> one() {
    auto r = stream.readRequest();
    r.setMaxBytes(chunk);
    return r.send().then([this](capnp::Response<idl::ByteStream::ReadResults>&& resp) -> kj::Promise<void> {
      *got += resp.getData().size();
      ++gReadAnswers;
      if (resp.getEof()) eof = true;
      if (eof || *got >= want) return kj::READY_NOW;
      return one();
    });
  }
};

kj::Promise<void> readAll(idl::ByteStream::Client s, uint64_t* got, uint64_t want, int streams = 1) {
  const int lanes = streams >= 4 ? 1 : 4;
  const uint32_t chunk = static_cast<uint32_t>(std::min<uint64_t>(65536, (1u << 20) / static_cast<unsigned>(streams * lanes)));
  auto reader = kj::heap<Reader>(Reader{kj::mv(s), got, want, chunk});
  kj::Vector<kj::Promise<void>> all;
  for (int i = 0; i < lanes; ++i) all.add(reader->one());
  return kj::joinPromises(all.releaseAsArray()).attach(kj::mv(reader));
}

// netd upload: 64 KiB writes, up to four in flight (each resolves once netd queued the bytes in
// lwIP's send buffer), then the fixture's count.
double netdUpload(Context& ctx, NetdStreams& streams, uint64_t bytes) {
  KJ_IF_MAYBE(s, streams.connect("tcp", kBulkPort)) {
    std::string head = bulkRequest('U', bytes);
    std::vector<kj::byte> chunk(65536, 'x');
    auto t0 = Clock::now();
    writeBytes(*s, kj::arrayPtr(reinterpret_cast<const kj::byte*>(head.data()), head.size())).wait(ctx.io.waitScope);
    std::vector<kj::Promise<void>> inFlight;
    uint64_t sent = 0;
    while (sent < bytes) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), bytes - sent));
      inFlight.push_back(writeBytes(*s, kj::arrayPtr(chunk.data(), n)));
      sent += n;
      if (inFlight.size() == 4) {
        inFlight.front().wait(ctx.io.waitScope);
        inFlight.erase(inFlight.begin());
      }
    }
    for (auto& p : inFlight) p.wait(ctx.io.waitScope);
    uint64_t got = 0;
    readAll(*s, &got, 8).wait(ctx.io.waitScope);
    auto d = Clock::now() - t0;
    s->closeRequest().send().wait(ctx.io.waitScope);
    return got == 8 ? mbps(bytes, d) : 0;
  }
  return 0;
}

// netd download over `n` streams at once, `each` bytes per stream: aggregate MB/s.
double netdDownload(Context& ctx, NetdStreams& streams, int n, uint64_t each) {
  kj::Vector<idl::ByteStream::Client> ss;
  for (int i = 0; i < n; ++i) {
    KJ_IF_MAYBE(s, streams.connect("tcp", kBulkPort)) { ss.add(*s); } else { return 0; }
  }
  std::string head = bulkRequest('D', each);
  std::vector<uint64_t> got(ss.size(), 0);
  auto t0 = Clock::now();
  kj::Vector<kj::Promise<void>> all;
  for (size_t i = 0; i < ss.size(); ++i) {
    all.add(writeBytes(ss[i], kj::arrayPtr(reinterpret_cast<const kj::byte*>(head.data()), head.size()))
                .then([s = ss[i], g = &got[i], each, n]() mutable { return readAll(kj::mv(s), g, each, n); }));
  }
  kj::joinPromises(all.releaseAsArray()).wait(ctx.io.waitScope);
  auto d = Clock::now() - t0;
  uint64_t total = 0;
  for (auto g : got) total += g;
  for (auto& s : ss) s.closeRequest().send().wait(ctx.io.waitScope);
  return total == each * ss.size() ? mbps(total, d) : 0;
}

// HTTPS straight through netd (no fetchd hop): GET /large over `connect` with useTls, the body
// read with the same window as the download figure. Splits the fetchd figure into netd's TLS part
// and fetchd's hop.
double netdHttps(Context& ctx, NetdStreams& streams) {
  KJ_IF_MAYBE(s, streams.connect("tls", kTlsPort)) {
    std::string req = "GET /large HTTP/1.1\r\nHost: devnet.test\r\nConnection: close\r\n\r\n";
    auto t0 = Clock::now();
    writeBytes(*s, kj::arrayPtr(reinterpret_cast<const kj::byte*>(req.data()), req.size())).wait(ctx.io.waitScope);
    uint64_t got = 0;
    readAll(*s, &got, UINT64_MAX).wait(ctx.io.waitScope);
    auto d = Clock::now() - t0;
    s->closeRequest().send().ignoreResult().then([]() {}, [](kj::Exception&&) {}).wait(ctx.io.waitScope);
    return got >= kBulkBytes ? mbps(got, d) : 0;
  }
  return 0;
}

std::vector<std::pair<std::string, long long>> netdCounters(Context& ctx);

// netd's memory per idle TLS connection: its heap in use (from its status) with
// `kIdleTlsConnections` handshaken connections held open, minus before, divided by their number
// (KiB). The heap, not the RSS: heap freed earlier (wolfSSL's released caches, closed connections)
// is reused before the process grows, so an RSS difference can come out near zero.
// The RSS difference is printed too, as a cross-check.
double netdKibPerIdleTls(Context& ctx, NetdStreams& streams) {
  auto heapInUse = [&]() -> long long {
    for (auto& [k, v] : netdCounters(ctx)) if (k == "heap-in-use") return v;
    return -1;
  };
  // One connection first, so that one-time allocations (wolfSSL's context, the root cache) are
  // not counted per connection.
  auto warm = streams.connect("tls", kTlsPort);
  if (warm == nullptr) return -1;
  const long rssBefore = footprintOf("netd").rssKb;
  const long long before = heapInUse();
  kj::Vector<idl::ByteStream::Client> held;
  for (int i = 0; i < kIdleTlsConnections; ++i) {
    KJ_IF_MAYBE(s, streams.connect("tls", kTlsPort)) { held.add(*s); } else { return -1; }
  }
  const long long after = heapInUse();
  const long rssAfter = footprintOf("netd").rssKb;
  for (auto& s : held) s.closeRequest().send().wait(ctx.io.waitScope);
  KJ_IF_MAYBE(w, warm) { w->closeRequest().send().wait(ctx.io.waitScope); }
  if (before < 0 || after < 0) {
    std::printf("bench: idle-tls netd's status carries no heap-in-use\n");
    return -2;
  }
  std::printf("bench: idle-tls heap-per-connection-kib=%.1f rss-per-connection-kib=%.1f connections=%d\n",
              static_cast<double>(after - before) / 1024.0 / kIdleTlsConnections,
              static_cast<double>(rssAfter - rssBefore) / kIdleTlsConnections, kIdleTlsConnections);
  return static_cast<double>(after - before) / 1024.0 / kIdleTlsConnections;
}

// netd's link counters (from its status: "detail (key=value ...)") as numbers.
std::vector<std::pair<std::string, long long>> netdCounters(Context& ctx) {
  std::vector<std::pair<std::string, long long>> out;
  Session netd(ctx.io, ctx.paths.netd, kSelftestUid);
  if (!netd.ok()) return out;
  std::string d = netd.as<idl::NetConnect>().statusRequest().send().wait(ctx.io.waitScope).getStackDetail().cStr();
  auto open = d.rfind('('), close = d.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return out;
  std::string text = d.substr(open + 1, close - open - 1);
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find(' ', at);
    if (end == std::string::npos) end = text.size();
    std::string kv = text.substr(at, end - at);
    size_t eq = kv.find('=');
    if (eq != std::string::npos) out.emplace_back(kv.substr(0, eq), std::atoll(kv.c_str() + eq + 1));
    at = end + 1;
  }
  return out;
}

// What netd's link did during one phase, per MiB moved: the profile docs/performance.md records.
void printCounters(const char* phase, uint64_t bytes, const std::vector<std::pair<std::string, long long>>& before,
                   const std::vector<std::pair<std::string, long long>>& after, uint64_t readAnswers = 0) {
  std::string line = std::string("bench: counters phase=") + phase + " bytes=" + std::to_string(bytes);
  if (readAnswers > 0) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), " read-answers-per-mib=%.1f", static_cast<double>(readAnswers) * (1 << 20) / static_cast<double>(bytes));
    line += buf;
  }
  for (size_t i = 0; i < after.size() && i < before.size(); ++i) {
    if (after[i].first != before[i].first || after[i].first == "heap-in-use") continue;
    char buf[64];
    std::snprintf(buf, sizeof(buf), " %s-per-mib=%.1f", after[i].first.c_str(),
                  static_cast<double>(after[i].second - before[i].second) * (1 << 20) / static_cast<double>(bytes));
    line += buf;
  }
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// Where the guest's one CPU went during a phase (the profile docs/performance.md records): the
// kernel's totals from /proc/stat (irq = hard and soft interrupts: the kernel path's TCP/IP runs
// there) and netd's, fetchd's and this process's own user+system time from /proc/PID/stat, in
// clock ticks (10 ms). A TCG guest has one CPU, so the shares say whether a path
// is bound by CPU (idle near 0) and whose.
struct CpuSnapshot {
  long long busy = 0, irq = 0, idle = 0;   // /proc/stat: user+nice+system, irq+softirq, idle+iowait
  long long netd = 0, fetchd = 0, self = 0;
};

long long processTicks(pid_t pid) {
  if (pid == 0) return 0;
  auto read = readFileBounded("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!read) return 0;
  const std::string& text = read.value();
  // Fields after the command's closing parenthesis: state is field 3; utime, stime are 14, 15.
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<long long> fields;
  const char* at = text.c_str() + close + 1;
  char* end = nullptr;
  while (fields.size() < 13) {
    while (*at == ' ') ++at;
    if (*at == '\0') return 0;
    if (fields.empty()) { ++at; fields.push_back(0); continue; }   // the state letter
    fields.push_back(std::strtoll(at, &end, 10));
    if (end == at) return 0;
    at = end;
  }
  return fields[11] + fields[12];
}

struct CpuProfile {
  pid_t netd = pidOf("netd"), fetchd = pidOf("fetchd");

  CpuSnapshot now() const {
    CpuSnapshot c;
    auto text = readFileBounded("/proc/stat", 1 << 16);
    long long v[8] = {};
    if (text && std::sscanf(text->c_str(), "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                    &v[6], &v[7]) == 8) {
      c.busy = v[0] + v[1] + v[2];
      c.idle = v[3] + v[4];
      c.irq = v[5] + v[6];   // v[7] is steal time: none in this guest, and not interrupts
    }
    c.netd = processTicks(netd);
    c.fetchd = processTicks(fetchd);
    c.self = processTicks(::getpid());
    return c;
  }

  // `run` timed between two snapshots; prints the shares as one line and returns run's result.
  template <typename F>
  auto measure(const char* phase, F&& run) const {
    CpuSnapshot a = now();
    auto result = run();
    CpuSnapshot b = now();
    const double total = static_cast<double>((b.busy + b.irq + b.idle) - (a.busy + a.irq + a.idle));   // no steal: TCG
    // A daemon restarted during the phase (a new pid, its times from zero) counts as 0, not less.
    auto pct = [&](long long d) { return total > 0 && d > 0 ? 100.0 * static_cast<double>(d) / total : 0.0; };
    // No "other" column: processes' times are accounted exactly, /proc/stat's by ticks, so the
    // shares need not add up to 100 and a difference would be noise.
    std::printf("bench: cpu phase=%s ticks=%.0f netd=%.0f%% fetchd=%.0f%% selftest=%.0f%% irq=%.0f%% idle=%.0f%%\n", phase, total,
                pct(b.netd - a.netd), pct(b.fetchd - a.fetchd), pct(b.self - a.self), pct(b.irq - a.irq), pct(b.idle - a.idle));
    std::fflush(stdout);
    return result;
  }
};

struct Figure {
  const char* key;
  const char* label;
  const char* unit;
  double netd, kernel;   // kernel < 0: no kernel counterpart (an absolute target)
  const char* target;    // "ratio>=X", "ratio<=X" or "netd<=X"
};

void print(const Figure& f) {
  std::printf("bench: figure=%s netd=%.3f kernel=%.3f unit=%s target=%s label=\"%s\"\n", f.key, f.netd, f.kernel, f.unit,
              f.target, f.label);
  std::fflush(stdout);
}

Report bench(Context& ctx) {
  Figures kernel = kernelPath();
  Figures netd = netdPath(ctx);
  if (!kernel.error.empty()) return Report{Outcome::kFail, kernel.error};
  if (!netd.error.empty()) return Report{Outcome::kFail, netd.error};
  print({"connect_p50", "connect latency p50", "ms", percentile(netd.connectMs, 0.5), percentile(kernel.connectMs, 0.5), "ratio<=1.0"});
  print({"connect_p99", "connect latency p99", "ms", percentile(netd.connectMs, 0.99), percentile(kernel.connectMs, 0.99), "ratio<=1.0"});

  NetdStreams streams(ctx);
  if (!streams.ok()) return Report{Outcome::kFail, "cannot reach netd"};
  const CpuProfile cpu;
  // netd's own sampling profiler (netd --cpu-profile in this profile) over the plain TCP phases
  // (upload and the downloads: the data path, no TLS): SIGUSR2 starts it, the second prints the
  // samples (scripts/bench-net.sh symbolises them).
  // A second dump covers the TLS handshakes alone. Each dump is announced with what it covers.
  bool sampling = false;
  int dumps = 0;
  auto startSampling = [&]() {
    sampling = cpu.netd != 0 && ::kill(cpu.netd, SIGUSR2) == 0;
    if (!sampling) std::printf("bench: netd cpu-profile unavailable (%s)\n", std::strerror(errno));
  };
  auto stopSampling = [&](const char* covers) {
    if (!sampling) return;
    ::kill(cpu.netd, SIGUSR2);
    sampling = false;
    std::printf("bench: netd cpu-profile dump=%d covers=%s\n", ++dumps, covers);
    std::fflush(stdout);
  };
  startSampling();
  auto stopOnReturn = kj::defer([&]() { stopSampling("until-a-failure"); });
  const double ku = cpu.measure("upload-kernel", [&] { return kernelUpload(kBulkBytes); });
  auto beforeUp = netdCounters(ctx);
  const double nu = cpu.measure("upload-netd", [&] { return netdUpload(ctx, streams, kBulkBytes); });
  printCounters("upload", kBulkBytes, beforeUp, netdCounters(ctx));
  if (ku <= 0 || nu <= 0) return Report{Outcome::kFail, "upload failed (netd " + std::to_string(nu) + ", kernel " + std::to_string(ku) + ")"};
  print({"upload", "upload throughput (4 MiB)", "MB/s", nu, ku, "ratio>=1.0"});
  const double kd = cpu.measure("download-kernel", [&] { return kernelDownload(1, kBulkBytes); });
  auto before = netdCounters(ctx);
  const uint64_t answersBefore = gReadAnswers;
  const double nd = cpu.measure("download-netd", [&] { return netdDownload(ctx, streams, 1, kBulkBytes); });
  printCounters("download", kBulkBytes, before, netdCounters(ctx), gReadAnswers - answersBefore);
  if (kd <= 0 || nd <= 0) return Report{Outcome::kFail, "download failed"};
  print({"download", "download throughput (4 MiB)", "MB/s", nd, kd, "ratio>=1.0"});
  for (int n : {16, 64}) {
    const uint64_t each = kBulkBytes / static_cast<uint64_t>(n);
    const std::string phase = "download" + std::to_string(n);
    const double k = cpu.measure((phase + "-kernel").c_str(), [&] { return kernelDownload(n, each); });
    const double d = cpu.measure((phase + "-netd").c_str(), [&] { return netdDownload(ctx, streams, n, each); });
    if (k <= 0 || d <= 0) return Report{Outcome::kFail, "download over " + std::to_string(n) + " connections failed"};
    print({n == 16 ? "download_16" : "download_64", n == 16 ? "download, 16 connections (4 MiB)" : "download, 64 connections (4 MiB)",
           "MB/s", d, k, "ratio>=1.0"});
  }
  stopSampling("upload,download,download16,download64");
  print({"echo", "echo throughput (4 MiB)", "MB/s", netd.bulkMBps, kernel.bulkMBps, "ratio>=1.0"});

  // Handshakes, alternating between the paths (netd's sampler covers them: dump 2), then the
  // HTTPS body on each.
  KernelTls kernelTls;
  if (!kernelTls.ok()) return Report{Outcome::kFail, "kernel tls: cannot load the root"};
  startSampling();
  HandshakeRates hs = cpu.measure("handshakes-both", [&] { return handshakes(ctx, kernelTls, streams); });
  stopSampling("tls-handshakes");
  if (!hs.error.empty()) return Report{Outcome::kFail, hs.error};
  print({"tls_handshakes", "TLS 1.3 handshakes", "/s", hs.netd, hs.kernel, "ratio>=0.95"});
  const double kb = cpu.measure("https-kernel", [&] { return kernelTls.bulk(); });
  if (kb <= 0) return Report{Outcome::kFail, "kernel https bulk: short body"};
  auto [fb, fetchError] = cpu.measure("https-fetchd", [&] { return fetchdHttps(ctx); });
  if (!fetchError.empty()) return Report{Outcome::kFail, fetchError};
  print({"https_fetchd", "HTTPS download through fetchd (4 MiB)", "MB/s", fb, kb, "ratio>=0.9"});
  const double nh = cpu.measure("https-netd", [&] { return netdHttps(ctx, streams); });
  if (nh <= 0) return Report{Outcome::kFail, "HTTPS through netd failed"};
  print({"https_netd", "HTTPS download through netd only (4 MiB)", "MB/s", nh, kb, "ratio>=0.9"});
  const double kib = netdKibPerIdleTls(ctx, streams);
  if (kib == -2) return Report{Outcome::kFail, "netd's status carries no heap-in-use"};
  if (kib < 0) return Report{Outcome::kFail, "idle TLS connections could not be opened"};
  print({"idle_tls_kib", "netd memory per idle TLS connection", "KiB", kib, -1, "netd<=64"});
  return Report{Outcome::kOk, ""};
}

}  // namespace

std::vector<Scenario> benchScenarios(const std::string& profile) {
  if (profile == "bench") return {{"net bench", bench}};
  return {};
}

}  // namespace capnet::selftest

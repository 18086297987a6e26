#include <doctest/doctest.h>
#include <kj/async-io.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>

extern "C" {
#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"
}

#include "netd/stack/lwip-stack.h"
#include "netd/stack/socket-link.h"
#include "tests/support/audit-capture.h"
#include "tests/support/wait.h"

using namespace capnet;

namespace {

constexpr uint32_t kPeer = 0x0a000202;    // 10.0.2.2
constexpr uint32_t kSilent = 0x0a000263;  // 10.0.2.99: nobody answers ARP for it.

// ---- the peer: a second, independent lwIP in a child process, echoing on port 7 ---------------

int gPeerFd = -1;

err_t peerOutput(netif*, pbuf* p) {
  uint8_t frame[1600];
  u16_t n = pbuf_copy_partial(p, frame, p->tot_len, 0);
  ::send(gPeerFd, frame, n, MSG_NOSIGNAL);
  return ERR_OK;
}

err_t peerNetifInit(netif* nif) {
  const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 2};
  nif->hwaddr_len = 6;
  std::memcpy(nif->hwaddr, mac, 6);
  nif->mtu = 1500;
  nif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
  nif->output = etharp_output;
  nif->linkoutput = peerOutput;
  return ERR_OK;
}

err_t peerRecv(void*, tcp_pcb* pcb, pbuf* p, err_t) {
  if (p == nullptr) {
    tcp_shutdown(pcb, 0, 1);   // echo the half-close.
    return ERR_OK;
  }
  // Echo only when all of it fits; otherwise refuse it for now (lwIP keeps it and offers it
  // again), so the sender's window closes: flow control end to end.
  if (tcp_sndbuf(pcb) < p->tot_len || tcp_sndqueuelen(pcb) + 8 > TCP_SND_QUEUELEN) {
    tcp_output(pcb);
    return ERR_MEM;
  }
  for (pbuf* q = p; q != nullptr; q = q->next) {
    if (tcp_write(pcb, q->payload, q->len, TCP_WRITE_FLAG_COPY) != ERR_OK) return ERR_MEM;
  }
  tcp_recved(pcb, p->tot_len);
  tcp_output(pcb);
  pbuf_free(p);
  return ERR_OK;
}

err_t peerAccept(void*, tcp_pcb* pcb, err_t err) {
  if (err != ERR_OK || pcb == nullptr) return ERR_VAL;
  tcp_recv(pcb, peerRecv);
  return ERR_OK;
}

[[noreturn]] void runPeer(int fd) {
  // A forked copy of the test binary: doctest's crash handlers must not report from here.
  for (int sig : {SIGTERM, SIGSEGV, SIGABRT, SIGINT, SIGBUS, SIGFPE, SIGILL}) ::signal(sig, SIG_DFL);
  gPeerFd = fd;
  lwip_init();
  static netif nif;
  ip4_addr_t addr, mask, gw;
  IP4_ADDR(&addr, 10, 0, 2, 2);
  IP4_ADDR(&mask, 255, 255, 255, 0);
  IP4_ADDR(&gw, 0, 0, 0, 0);
  netif_add(&nif, &addr, &mask, &gw, nullptr, peerNetifInit, ethernet_input);
  netif_set_up(&nif);
  tcp_pcb* l = tcp_new();
  tcp_bind(l, IP_ADDR_ANY, 7);
  l = tcp_listen(l);
  tcp_accept(l, peerAccept);
  uint8_t buf[2048];
  for (int idle = 0; idle < 400;) {   // bounded: ends 20 s after the parent goes quiet.
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, 50);
    if (r > 0) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;   // the parent closed its end.
      idle = 0;
      pbuf* q = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(n), PBUF_RAM);
      if (q != nullptr) {
        pbuf_take(q, buf, static_cast<u16_t>(n));
        if (nif.input(q, &nif) != ERR_OK) pbuf_free(q);
      }
    } else {
      ++idle;
    }
    sys_check_timeouts();
  }
  _exit(0);
}

struct Peer {
  pid_t pid = -1;
  int fd = -1;   // our end
  Peer() {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(sv[0]);
      runPeer(sv[1]);
    }
    ::close(sv[1]);
    fd = sv[0];
  }
  ~Peer() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
  }
};

std::string pattern(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 7;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

}  // namespace

// Every test forks its peer before it creates its own event loop and stack.

TEST_CASE("lwIP connects to a peer stack and carries 1 MiB both ways through 1514-byte frames, then half-closes") {
  Peer peer;
  auto io = kj::setupAsyncIo();
  SocketFrameLink link(peer.fd, {0x02, 0, 0, 0, 0, 0x0f});
  LwipStack stack(io.unixEventPort, io.provider->getTimer(), link, Ipv4Config{});
  REQUIRE(stack.up());
  auto running = stack.run().eagerlyEvaluate([](kj::Exception&& e) { FAIL(e.getDescription().cStr()); });
  auto r = stack.connect(kPeer, 7, 5000).wait(io.waitScope);
  REQUIRE(r.ok());
  auto conn = kj::mv(r).value();
  CHECK(conn->localPort() != 0);
  const std::string sent = pattern(1 << 20);
  std::string got;
  auto writer = conn->write(kj::arrayPtr(reinterpret_cast<const kj::byte*>(sent.data()), sent.size()))
                    .then([&]() { return conn->shutdownWrite(); })
                    .eagerlyEvaluate([](kj::Exception&& e) { FAIL(e.getDescription().cStr()); });
  auto& timer = io.provider->getTimer();
  for (;;) {
    // Bounded: a stall fails the test instead of hanging it.
    auto chunk = timer.timeoutAfter(20 * kj::SECONDS, conn->read(65536)).wait(io.waitScope);
    if (chunk.eof) break;
    got.append(reinterpret_cast<const char*>(chunk.data.begin()), chunk.data.size());
  }
  timer.timeoutAfter(20 * kj::SECONDS, kj::mv(writer)).wait(io.waitScope);
  CHECK(got.size() == sent.size());
  CHECK(got == sent);
  CHECK(stack.counters().rxFrames > 700);   // 1 MiB in MSS-sized segments, plus ACKs.
  CHECK(stack.connections() == 1);
  conn = nullptr;
  CHECK(stack.connections() == 0);
}

TEST_CASE("a port with no listener answers RST: connect-refused") {
  Peer peer;
  auto io = kj::setupAsyncIo();
  SocketFrameLink link(peer.fd, {0x02, 0, 0, 0, 0, 0x0f});
  LwipStack stack(io.unixEventPort, io.provider->getTimer(), link, Ipv4Config{});
  auto running = stack.run().eagerlyEvaluate(nullptr);
  auto r = stack.connect(kPeer, 9, 5000).wait(io.waitScope);
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == ConnectError::kRefused);
}

namespace {
// A working link that can be declared broken, as the device's health check would.
class BreakableLink final : public FrameLink {
 public:
  explicit BreakableLink(FrameLink& inner) : inner_(inner) {}
  std::array<uint8_t, 6> mac() const override { return inner_.mac(); }
  uint16_t mtu() const override { return inner_.mtu(); }
  bool transmit(std::span<const uint8_t> frame) override { return inner_.transmit(frame); }
  size_t poll(const std::function<void(std::span<const uint8_t>)>& deliver) override { return inner_.poll(deliver); }
  int eventFd() const override { return inner_.eventFd(); }
  void acknowledge() override { inner_.acknowledge(); }
  void flush() override { inner_.flush(); }
  std::string failure() const override { return broken; }
  std::string broken;

 private:
  FrameLink& inner_;
};
}  // namespace

TEST_CASE("a link that breaks takes the stack down within a second or so: audited, and connects refused as no-os-stack") {
  capnet::testing::AuditCapture audit;
  Peer peer;
  auto io = kj::setupAsyncIo();
  SocketFrameLink socketLink(peer.fd, {0x02, 0, 0, 0, 0, 0x0f});
  BreakableLink link(socketLink);
  LwipStack stack(io.unixEventPort, io.provider->getTimer(), link, Ipv4Config{});
  auto running = stack.run().eagerlyEvaluate(nullptr);
  REQUIRE(stack.up());
  link.broken = "device needs reset";
  CHECK(capnet::testing::runUntil(io, [&] { return !stack.up(); }, 3 * kj::SECONDS));
  CHECK(stack.detail() == "link broken: device needs reset");
  CHECK(audit.has("netd: link-broken detail=\"device needs reset\""));
  auto r = stack.connect(kPeer, 9, 5000).wait(io.waitScope);
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == ConnectError::kNoStack);
}

TEST_CASE("an address nobody answers for times out within the connect timeout") {
  Peer peer;
  auto io = kj::setupAsyncIo();
  SocketFrameLink link(peer.fd, {0x02, 0, 0, 0, 0, 0x0f});
  LwipStack stack(io.unixEventPort, io.provider->getTimer(), link, Ipv4Config{});
  auto running = stack.run().eagerlyEvaluate(nullptr);
  auto r = stack.connect(kSilent, 7, 300).wait(io.waitScope);
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == ConnectError::kTimeout);
  CHECK(stack.connections() == 0);
}

TEST_CASE("the connection limit refuses with too-many and frees its slot on close") {
  Peer peer;
  auto io = kj::setupAsyncIo();
  SocketFrameLink link(peer.fd, {0x02, 0, 0, 0, 0, 0x0f});
  LwipStack stack(io.unixEventPort, io.provider->getTimer(), link, Ipv4Config{}, LwipLimits{2});
  auto running = stack.run().eagerlyEvaluate(nullptr);
  auto a = stack.connect(kPeer, 7, 5000).wait(io.waitScope);
  auto b = stack.connect(kPeer, 7, 5000).wait(io.waitScope);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  auto c = stack.connect(kPeer, 7, 5000).wait(io.waitScope);
  REQUIRE_FALSE(c.ok());
  CHECK(c.code() == ConnectError::kTooMany);
  { auto drop = kj::mv(a).value(); }
  auto d = stack.connect(kPeer, 7, 5000).wait(io.waitScope);
  CHECK(d.ok());
}

TEST_CASE("destroying a connection mid-transfer resets it cleanly and the peer's later frames are harmless") {
  Peer peer;
  auto io = kj::setupAsyncIo();
  SocketFrameLink link(peer.fd, {0x02, 0, 0, 0, 0, 0x0f});
  LwipStack stack(io.unixEventPort, io.provider->getTimer(), link, Ipv4Config{});
  auto running = stack.run().eagerlyEvaluate(nullptr);
  auto r = stack.connect(kPeer, 7, 5000).wait(io.waitScope);
  REQUIRE(r.ok());
  auto conn = kj::mv(r).value();
  const std::string sent = pattern(256 * 1024);
  auto writing = conn->write(kj::arrayPtr(reinterpret_cast<const kj::byte*>(sent.data()), sent.size()));
  capnet::testing::runFor(io, 20 * kj::MILLISECONDS);   // some of it on the wire, most of it queued
  conn = nullptr;   // abort while data is in flight.
  CHECK(capnet::testing::runUntil(io, [&] { return stack.connections() == 0; }, 2 * kj::SECONDS));
  auto again = stack.connect(kPeer, 7, 5000).wait(io.waitScope);
  CHECK(again.ok());
}

TEST_CASE("malformed frames (truncated, oversized, garbage) are dropped without a crash") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
  auto io = kj::setupAsyncIo();
  SocketFrameLink link(sv[0], {0x02, 0, 0, 0, 0, 0x0f});
  LwipStack stack(io.unixEventPort, io.provider->getTimer(), link, Ipv4Config{});
  std::mt19937 rng(1234);
  uint8_t frame[1600];
  for (int i = 0; i < 3000; ++i) {
    size_t len = rng() % sizeof(frame);
    for (size_t k = 0; k < len; ++k) frame[k] = static_cast<uint8_t>(rng());
    if (i % 3 == 0 && len >= 14) {   // make some look like IPv4 to us, to reach deeper parsers.
      std::memcpy(frame, "\x02\x00\x00\x00\x00\x0f", 6);
      frame[12] = 0x08;
      frame[13] = 0x00;
      if (len > 14) frame[14] = 0x45;
    }
    (void)::send(sv[1], frame, len, MSG_DONTWAIT);
    if (i % 50 == 0) stack.service();
  }
  stack.service();
  CHECK(stack.up());
  CHECK(stack.counters().rxDropped + stack.counters().rxFrames > 0);
  ::close(sv[1]);
}

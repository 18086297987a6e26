// Ethernet frames from a hostile LAN into netd's TCP/IP stack (netd/stack/lwip-stack.cpp:
// LwipStack::service -> lwIP's ethernet_input, ARP, IPv4 with reassembly, ICMP, TCP) through its
// FrameLink, with a TCP connection open so that segments reach a live pcb and netd's
// LwipConnection (its receive queue, flow control and error paths).
//
// One LwipStack per process (lwIP keeps global state). Per input the harness opens a fresh
// connection from 10.0.2.15 to 10.0.2.2:80: it answers lwIP's ARP request and completes the
// handshake with a crafted SYN-ACK (peer ISN 1000000), writes an 18-byte request, and keeps a
// reader draining the connection. Then it feeds the input's frames one by one, and finally
// destroys the connection (RST) and ages out IP reassembly, so the next input starts alike.
//
// Input: frames, each a 2-byte big-endian prefix then the frame. Prefix bit 15 = raw (the frame is
// delivered as is); bits 0-14 = length (truncated to what remains). A frame that is not raw is
// made to belong to the connection first, so the fuzzer spends its time past the checksums:
//   - Ethernet: destination = the stack's MAC, source = the peer's;
//   - IPv4 (version 4, IHL >= 5): source 10.0.2.2, destination 10.0.2.15, total length = the
//     frame's, header checksum recomputed;
//   - TCP in an unfragmented datagram: ports = the connection's (80 -> lwIP's local port), the
//     sequence number counts from the peer's first data byte and the acknowledgement number from
//     lwIP's first data byte (both relative: lwIP's ISN and port are random per connection),
//     checksum recomputed.
// The seeds are such frames: data, out-of-order data, FIN, RST, window changes, options, ICMP,
// ARP, fragments.
#include <kj/async-io.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

extern "C" {
#include "lwip/ip4_frag.h"
}

#include "fuzz/fuzz-world.h"
#include "netd/frame-link.h"
#include "netd/stack/lwip-stack.h"

namespace {

constexpr uint8_t kOurMac[6] = {0x02, 0, 0, 0, 0, 1};
constexpr uint8_t kPeerMac[6] = {0x02, 0, 0, 0, 0, 2};
constexpr uint32_t kOurIp = 0x0a00020f;    // 10.0.2.15
constexpr uint32_t kPeerIp = 0x0a000202;   // 10.0.2.2
constexpr uint16_t kPeerPort = 80;
constexpr uint32_t kPeerIsn = 1000000;
constexpr char kRequest[] = "GET / HTTP/1.1\r\n\r\n";   // 18 bytes lwIP sends once connected

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t rd32(const uint8_t* p) { return static_cast<uint32_t>(rd16(p)) << 16 | rd16(p + 2); }
void wr16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void wr32(uint8_t* p, uint32_t v) {
  wr16(p, static_cast<uint16_t>(v >> 16));
  wr16(p + 2, static_cast<uint16_t>(v));
}

uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += rd16(p + i);
  if (n & 1) acc += static_cast<uint32_t>(p[n - 1]) << 8;
  return acc;
}
uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

class FuzzLink final : public capnet::FrameLink {
 public:
  std::deque<std::vector<uint8_t>> inbox;   // frames for the stack
  std::vector<std::vector<uint8_t>> sent;   // frames the stack sent since last looked at

  std::array<uint8_t, 6> mac() const override { return {kOurMac[0], kOurMac[1], kOurMac[2], kOurMac[3], kOurMac[4], kOurMac[5]}; }
  uint16_t mtu() const override { return 1500; }
  bool transmit(std::span<const uint8_t> frame) override {
    if (frame.size() > 1514) return false;
    sent.emplace_back(frame.begin(), frame.end());
    return true;
  }
  size_t poll(const std::function<void(std::span<const uint8_t>)>& deliver) override {
    size_t n = 0;
    while (!inbox.empty()) {
      auto f = std::move(inbox.front());
      inbox.pop_front();
      deliver(std::span<const uint8_t>(f.data(), f.size()));
      ++n;
    }
    return n;
  }
  int eventFd() const override { return -1; }
};

// Fills in IPv4 and TCP checksums (and the lengths they cover) of a frame.
void finishIpv4(std::vector<uint8_t>& f) {
  uint8_t* ip = f.data() + 14;
  size_t ihl = (ip[0] & 0x0f) * 4u;
  size_t total = f.size() - 14;
  wr16(ip + 2, static_cast<uint16_t>(total));
  wr16(ip + 10, 0);
  wr16(ip + 10, fold(sum16(ip, ihl)));
  bool fragment = (rd16(ip + 6) & 0x3fff) != 0;   // MF set or an offset
  if (ip[9] != 6 || fragment || total < ihl + 20) return;
  uint8_t* tcp = ip + ihl;
  size_t tcpLen = total - ihl;
  wr16(tcp + 16, 0);
  uint32_t acc = sum16(ip + 12, 8);   // source and destination
  acc += 6 + static_cast<uint32_t>(tcpLen);
  wr16(tcp + 16, fold(sum16(tcp, tcpLen, acc)));
}

std::vector<uint8_t> ethernet(uint16_t type, size_t payload) {
  std::vector<uint8_t> f(14 + payload, 0);
  std::memcpy(f.data(), kOurMac, 6);
  std::memcpy(f.data() + 6, kPeerMac, 6);
  wr16(f.data() + 12, type);
  return f;
}

struct World {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  FuzzLink link;
  kj::Own<capnet::LwipStack> stack;
  World() {
    stack = kj::heap<capnet::LwipStack>(io.unixEventPort, io.provider->getTimer(), link, capnet::Ipv4Config{});
  }

  // What the current connection looks like on the wire.
  uint16_t localPort = 0;
  uint32_t localIsn = 0;

  // Answers ARP requests for the peer in what the stack sent; returns the SYN's port/ISN if seen.
  bool answer(bool* sawSyn) {
    bool any = false;
    auto sent = std::move(link.sent);
    link.sent.clear();
    for (const auto& f : sent) {
      if (f.size() >= 42 && rd16(f.data() + 12) == 0x0806 && rd16(f.data() + 20) == 1 && rd32(f.data() + 38) == kPeerIp) {
        auto r = ethernet(0x0806, 28);
        uint8_t* a = r.data() + 14;
        wr16(a, 1);
        wr16(a + 2, 0x0800);
        a[4] = 6;
        a[5] = 4;
        wr16(a + 6, 2);
        std::memcpy(a + 8, kPeerMac, 6);
        wr32(a + 14, kPeerIp);
        std::memcpy(a + 18, kOurMac, 6);
        wr32(a + 24, kOurIp);
        link.inbox.push_back(std::move(r));
        any = true;
      }
      if (sawSyn != nullptr && f.size() >= 54 && rd16(f.data() + 12) == 0x0800 && f[23] == 6) {
        const uint8_t* tcp = f.data() + 14 + (f[14] & 0x0f) * 4;
        if (tcp + 20 <= f.data() + f.size() && (tcp[13] & 0x12) == 0x02 && rd16(tcp + 2) == kPeerPort) {
          localPort = rd16(tcp);
          localIsn = rd32(tcp + 4);
          *sawSyn = true;
        }
      }
    }
    return any;
  }

  // A TCP segment from the peer to the connection (absolute numbers).
  std::vector<uint8_t> segment(uint32_t seq, uint32_t ack, uint8_t flags, std::span<const uint8_t> options = {}) {
    size_t tcpLen = 20 + options.size();
    auto f = ethernet(0x0800, 20 + tcpLen);
    uint8_t* ip = f.data() + 14;
    ip[0] = 0x45;
    ip[8] = 64;
    ip[9] = 6;
    wr32(ip + 12, kPeerIp);
    wr32(ip + 16, kOurIp);
    uint8_t* tcp = ip + 20;
    wr16(tcp, kPeerPort);
    wr16(tcp + 2, localPort);
    wr32(tcp + 4, seq);
    wr32(tcp + 8, ack);
    tcp[12] = static_cast<uint8_t>((tcpLen / 4) << 4);
    tcp[13] = flags;
    wr16(tcp + 14, 65535);
    std::memcpy(tcp + 20, options.data(), options.size());
    finishIpv4(f);
    return f;
  }

  // Makes a fuzzed frame belong to the current connection (see the header comment).
  void adopt(std::vector<uint8_t>& f) {
    if (f.size() < 14) return;
    std::memcpy(f.data(), kOurMac, 6);
    std::memcpy(f.data() + 6, kPeerMac, 6);
    if (rd16(f.data() + 12) != 0x0800 || f.size() < 34) return;
    uint8_t* ip = f.data() + 14;
    size_t ihl = (ip[0] & 0x0f) * 4u;
    if ((ip[0] >> 4) != 4 || ihl < 20 || 14 + ihl > f.size()) return;
    wr32(ip + 12, kPeerIp);
    wr32(ip + 16, kOurIp);
    bool fragment = (rd16(ip + 6) & 0x3fff) != 0;
    if (ip[9] == 6 && !fragment && f.size() >= 14 + ihl + 20) {
      uint8_t* tcp = ip + ihl;
      wr16(tcp, kPeerPort);
      wr16(tcp + 2, localPort);
      wr32(tcp + 4, rd32(tcp + 4) + kPeerIsn + 1);
      wr32(tcp + 8, rd32(tcp + 8) + localIsn + 1);
    }
    finishIpv4(f);
  }

  void settle() {
    for (int i = 0; i < 8; ++i) {
      stack->service();
      io.waitScope.poll();
      if (!answer(nullptr) && link.inbox.empty()) break;
    }
  }
};

kj::Promise<void> drain(capnet::TcpConnection& c) {
  return c.read(65536).then([&c](capnet::ReadResult r) -> kj::Promise<void> {
    if (::getenv("FUZZ_AUDIT") != nullptr) std::fprintf(stderr, "fuzz-frames: read %zu eof=%d\n", r.data.size(), r.eof);
    if (r.eof) return kj::READY_NOW;
    return drain(c);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& w = capnet::fuzz::world<World>();
  using R = capnet::Result<kj::Own<capnet::TcpConnection>, capnet::ConnectError>;
  // The handshake: ARP, SYN, our SYN-ACK (MSS 1460), lwIP's ACK.
  w.link.sent.clear();
  w.link.inbox.clear();
  auto connecting = w.stack->connect(kPeerIp, kPeerPort, 60000);
  bool sawSyn = false;
  for (int i = 0; i < 4 && !sawSyn; ++i) {
    w.answer(&sawSyn);
    w.stack->service();
  }
  if (!sawSyn) __builtin_trap();   // the harness's own set-up failed: not an input's doing
  static const uint8_t kMss[] = {2, 4, 0x05, 0xb4};
  w.link.inbox.push_back(w.segment(kPeerIsn, w.localIsn + 1, 0x12, kMss));
  w.settle();
  if (!connecting.poll(w.io.waitScope)) __builtin_trap();
  R result = connecting.wait(w.io.waitScope);
  if (!result.ok()) __builtin_trap();
  kj::Own<capnet::TcpConnection> conn = kj::mv(result.value());
  auto reading = drain(*conn).eagerlyEvaluate([](kj::Exception&&) {});
  auto writing = conn->write(kj::arrayPtr(reinterpret_cast<const kj::byte*>(kRequest), sizeof(kRequest) - 1))
                     .eagerlyEvaluate([](kj::Exception&&) {});
  w.settle();

  // The input's frames.
  size_t off = 0;
  while (off + 2 <= size) {
    uint16_t prefix = rd16(data + off);
    off += 2;
    size_t len = std::min<size_t>(prefix & 0x7fff, size - off);
    std::vector<uint8_t> frame(data + off, data + off + len);
    off += len;
    if ((prefix & 0x8000) == 0) w.adopt(frame);
    w.link.inbox.push_back(std::move(frame));
    w.settle();
  }

  // Tear-down: the connection is reset, stale fragments age out.
  writing = kj::READY_NOW;
  reading = kj::READY_NOW;
  conn = nullptr;
  w.settle();
  for (int i = 0; i < IP_REASS_MAXAGE + 1; ++i) ip_reass_tmr();
  w.link.sent.clear();
  return 0;
}

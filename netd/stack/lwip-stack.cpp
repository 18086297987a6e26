#include "netd/stack/lwip-stack.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <kj/debug.h>

#include <algorithm>
#include <deque>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" {
#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/prot/tcp.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"
}

#include "common/audit.h"

// ---- the C hooks lwipopts.h names --------------------------------------------------------------

extern "C" u32_t capnet_lwip_rand(void) {
  u32_t v = 0;
  size_t got = 0;
  while (got < sizeof(v)) {
    ssize_t n = getrandom(reinterpret_cast<char*>(&v) + got, sizeof(v) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // No kernel randomness: predictable ports and sequence numbers would follow. Stop instead.
      std::fprintf(stdout, "netd: fatal reason=getrandom-failed\n");
      std::fflush(stdout);
      std::abort();
    }
    got += static_cast<size_t>(n);
  }
  return v;
}

extern "C" u32_t capnet_lwip_tcp_isn(const ip_addr_t*, u16_t, const ip_addr_t*, u16_t) {
  // A fresh random ISN per connection (RFC 6528's goal, unpredictability, without its clock).
  return capnet_lwip_rand();
}

extern "C" s8_t capnet_lwip_tcp_inpacket(struct tcp_pcb* pcb, struct tcp_hdr* hdr, u16_t, u16_t, u8_t*, struct pbuf*) {
  // A listening pcb is a tcp_pcb_listen (no receive state); before the handshake completes there is
  // no rcv_nxt to compare with.
  if (pcb == nullptr || pcb->state == LISTEN || pcb->state == CLOSED || pcb->state == SYN_SENT) return ERR_OK;
  const u32_t seqno = hdr->seqno;   // already in host order (tcp_input converted it)
  const u32_t distance = seqno - pcb->rcv_nxt;
  const bool near = distance < (1u << 30) || distance > 0u - (1u << 30);
  return near ? ERR_OK : ERR_VAL;
}

extern "C" void capnet_lwip_assert(const char* message, const char* file, int line) {
  std::fprintf(stdout, "netd: fatal reason=lwip-assert detail=\"%s\" at=%s:%d\n", message, file, line);
  std::fflush(stdout);
  std::abort();
}

extern "C" u32_t sys_now(void) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<u32_t>(static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1000000u);
}

namespace capnet {
namespace {

bool gStackExists = false;

// lwIP's own lwip_strerr() exists only in debug builds.
const char* errName(err_t e) {
  switch (e) {
    case ERR_OK: return "ok";
    case ERR_MEM: return "out of memory";
    case ERR_BUF: return "buffer error";
    case ERR_TIMEOUT: return "timeout";
    case ERR_RTE: return "no route";
    case ERR_INPROGRESS: return "in progress";
    case ERR_VAL: return "illegal value";
    case ERR_WOULDBLOCK: return "would block";
    case ERR_USE: return "address in use";
    case ERR_ALREADY: return "already connecting";
    case ERR_ISCONN: return "already connected";
    case ERR_CONN: return "not connected";
    case ERR_IF: return "netif error";
    case ERR_ABRT: return "connection aborted";
    case ERR_RST: return "connection reset";
    case ERR_CLSD: return "connection closed";
    case ERR_ARG: return "illegal argument";
    default: return "unknown lwIP error";
  }
}

ip4_addr_t toIp(uint32_t hostOrder) {
  ip4_addr_t a;
  ip4_addr_set_u32(&a, lwip_htonl(hostOrder));
  return a;
}

// ---- one TCP connection ------------------------------------------------------------------------

class LwipConnection final : public TcpConnection {
 public:
  LwipConnection(LwipStack& stack, tcp_pcb* pcb) : stack_(stack), pcb_(pcb) {
    stack_.connectionOpened();
    tcp_arg(pcb_, this);
    tcp_recv(pcb_, &LwipConnection::onRecv);
    tcp_sent(pcb_, &LwipConnection::onSent);
    tcp_err(pcb_, &LwipConnection::onErr);
  }

  ~LwipConnection() noexcept override {
    for (pbuf* p : queue_) pbuf_free(p);
    if (pcb_ != nullptr) {
      tcp_arg(pcb_, nullptr);
      tcp_recv(pcb_, nullptr);
      tcp_sent(pcb_, nullptr);
      tcp_err(pcb_, nullptr);
      // The owner half-closed first (ByteStream.close does): finish politely with FIN. Otherwise
      // the owner gave up mid-stream (dropped the stream, client vanished): reset.
      if (!finSent_ || tcp_close(pcb_) != ERR_OK) tcp_abort(pcb_);
      pcb_ = nullptr;
    }
    stack_.connectionClosed();
    stack_.service();   // flush what close queued.
  }

  kj::Promise<ReadResult> read(size_t maxBytes) override {
    if (!queue_.empty() && maxBytes > 0) {
      const size_t n = std::min(maxBytes, queued_);
      auto out = kj::heapArray<kj::byte>(n);
      for (size_t off = 0; off < n;) {
        // Each queued chain came from one lwIP callback, so its 16-bit tot_len is exact.
        pbuf* head = queue_.front();
        const size_t take = std::min<size_t>(n - off, head->tot_len);
        pbuf_copy_partial(head, out.begin() + off, static_cast<u16_t>(take), 0);
        off += take;
        // Release whole pbufs that were consumed; keep the rest.
        if (pbuf* rest = consume(head, take)) {
          queue_.front() = rest;
        } else {
          queue_.pop_front();
        }
      }
      queued_ -= n;
      // Flow control: only now does the window reopen (tcp_recved takes at most 0xffff at a time).
      if (pcb_ != nullptr) {
        for (size_t left = n; left > 0;) {
          const auto step = static_cast<u16_t>(std::min<size_t>(left, 0xffff));
          tcp_recved(pcb_, step);
          left -= step;
        }
        tcp_output(pcb_);
      }
      stack_.service();
      return ReadResult{kj::mv(out), false};
    }
    if (eof_) return ReadResult{kj::heapArray<kj::byte>(0), true};
    if (failed_) return KJ_EXCEPTION(DISCONNECTED, "connection reset", error_);
    auto paf = kj::newPromiseAndFulfiller<void>();
    readable_ = kj::mv(paf.fulfiller);
    return paf.promise.then([this, maxBytes]() { return read(maxBytes); });
  }

  kj::Promise<void> write(kj::ArrayPtr<const kj::byte> data) override {
    if (failed_ || pcb_ == nullptr) return KJ_EXCEPTION(DISCONNECTED, "connection closed", error_);
    if (finSent_) return KJ_EXCEPTION(FAILED, "write after shutdownWrite");
    while (data.size() > 0) {
      size_t room = tcp_sndbuf(pcb_);
      size_t queueRoom = tcp_sndqueuelen(pcb_) < TCP_SND_QUEUELEN - 2 ? room : 0;
      size_t n = std::min({data.size(), queueRoom, size_t(0xffff)});
      err_t e = n == 0 ? static_cast<err_t>(ERR_MEM) : tcp_write(pcb_, data.begin(), static_cast<u16_t>(n), TCP_WRITE_FLAG_COPY);
      if (e == ERR_MEM) {
        // Send buffer full: push out what is queued and take in what has arrived. Acknowledgements
        // processed here free space without any later callback, so look again before waiting
        // (waiting first would lose that wake-up and stall the connection).
        tcp_output(pcb_);
        stack_.service();
        if (failed_ || pcb_ == nullptr) return KJ_EXCEPTION(DISCONNECTED, "connection closed", error_);
        if (tcp_sndbuf(pcb_) > 0 && tcp_sndqueuelen(pcb_) < TCP_SND_QUEUELEN - 2) continue;
        // Backpressure reaches the writer: resume when the peer acknowledges (tcp_sent).
        auto paf = kj::newPromiseAndFulfiller<void>();
        writable_ = kj::mv(paf.fulfiller);
        return paf.promise.then([this, data]() { return write(data); });
      }
      if (e != ERR_OK) return KJ_EXCEPTION(FAILED, "tcp_write failed", errName(e));
      data = data.slice(n, data.size());
    }
    tcp_output(pcb_);
    stack_.service();
    return kj::READY_NOW;
  }

  kj::Promise<void> shutdownWrite() override {
    if (failed_ || pcb_ == nullptr) return KJ_EXCEPTION(DISCONNECTED, "connection closed", error_);
    if (!finSent_) {
      finSent_ = true;
      err_t e = tcp_shutdown(pcb_, 0, 1);
      if (e != ERR_OK) return KJ_EXCEPTION(FAILED, "tcp_shutdown failed", errName(e));
      tcp_output(pcb_);
      stack_.service();
    }
    return kj::READY_NOW;
  }

  uint16_t localPort() const override { return pcb_ != nullptr ? pcb_->local_port : localPort_; }

 private:
  static pbuf* consume(pbuf* p, size_t n) {
    while (p != nullptr && n >= p->len) {
      n -= p->len;
      pbuf* next = p->next;
      if (next != nullptr) pbuf_ref(next);
      pbuf_free(p);   // frees only the head (next holds its own reference now).
      p = next;
    }
    if (p != nullptr && n > 0) {
      pbuf_remove_header(p, n);
    }
    return p;
  }

  static err_t onRecv(void* arg, tcp_pcb*, pbuf* p, err_t err) {
    auto* self = static_cast<LwipConnection*>(arg);
    if (self == nullptr) {
      if (p != nullptr) pbuf_free(p);
      return ERR_OK;
    }
    if (p == nullptr) {
      self->eof_ = true;   // the peer sent FIN.
    } else if (err != ERR_OK) {
      pbuf_free(p);
      return ERR_OK;
    } else {
      // Kept as received, one chain per callback: a single chain's 16-bit tot_len could not hold a
      // window above 64 KiB.
      self->queue_.push_back(p);
      self->queued_ += p->tot_len;
    }
    self->wakeReader();
    return ERR_OK;
  }

  static err_t onSent(void* arg, tcp_pcb*, u16_t) {
    auto* self = static_cast<LwipConnection*>(arg);
    if (self != nullptr) self->wakeWriter();
    return ERR_OK;
  }

  static void onErr(void* arg, err_t err) {
    // lwIP has already freed the pcb.
    auto* self = static_cast<LwipConnection*>(arg);
    if (self == nullptr) return;
    self->localPort_ = 0;
    self->pcb_ = nullptr;
    self->failed_ = true;
    self->error_ = errName(err);
    self->wakeReader();
    self->wakeWriter();
  }

  void wakeReader() {
    KJ_IF_MAYBE(f, readable_) { (*f)->fulfill(); }
    readable_ = nullptr;
  }
  void wakeWriter() {
    KJ_IF_MAYBE(f, writable_) { (*f)->fulfill(); }
    writable_ = nullptr;
  }

  LwipStack& stack_;
  tcp_pcb* pcb_;
  std::deque<pbuf*> queue_;   // received and not yet read, oldest first
  size_t queued_ = 0;         // their bytes
  bool eof_ = false;
  bool finSent_ = false;
  bool failed_ = false;
  std::string error_;
  uint16_t localPort_ = 0;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> readable_;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> writable_;
};

// A connect in progress; owns the pcb until it is handed to a LwipConnection.
struct PendingConnect {
  LwipStack* stack;
  tcp_pcb* pcb;
  kj::Own<kj::PromiseFulfiller<Result<kj::Own<TcpConnection>, ConnectError>>> fulfiller;
  bool done = false;

  // The caller went away, or the connect finished without a connection: a pcb still connecting
  // is aborted so no lwIP callback can reach this object afterwards.
  ~PendingConnect() {
    if (pcb != nullptr) {
      tcp_arg(pcb, nullptr);
      tcp_err(pcb, nullptr);
      tcp_abort(pcb);
    }
  }

  void finish(Result<kj::Own<TcpConnection>, ConnectError> r) {
    if (done) return;
    done = true;
    fulfiller->fulfill(kj::mv(r));
  }
};

err_t onConnected(void* arg, tcp_pcb* pcb, err_t err) {
  auto* p = static_cast<PendingConnect*>(arg);
  if (p == nullptr || p->done) return ERR_OK;
  if (err != ERR_OK) {
    p->pcb = nullptr;
    p->finish(fail(ConnectError::kInternal, std::string("connect failed: ") + errName(err)));
    return ERR_OK;
  }
  p->pcb = nullptr;   // ownership moves to the connection.
  p->finish(kj::Own<TcpConnection>(kj::heap<LwipConnection>(*p->stack, pcb)));
  return ERR_OK;
}

void onConnectErr(void* arg, err_t err) {
  auto* p = static_cast<PendingConnect*>(arg);
  if (p == nullptr) return;
  p->pcb = nullptr;   // freed by lwIP.
  if (err == ERR_RST) {
    p->finish(fail(ConnectError::kRefused, "connection refused (RST)"));
  } else {
    p->finish(fail(ConnectError::kInternal, std::string("connect failed: ") + errName(err)));
  }
}

err_t linkOutput(netif* nif, pbuf* p) {
  auto* stack = static_cast<LwipStack*>(nif->state);
  uint8_t frame[1600];
  if (p->tot_len > sizeof(frame)) {
    ++stack->mutableCounters().txDropped;
    return ERR_BUF;
  }
  u16_t n = pbuf_copy_partial(p, frame, p->tot_len, 0);
  if (!stack->link().transmit(std::span<const uint8_t>(frame, n))) {
    ++stack->mutableCounters().txDropped;
    return ERR_MEM;   // lwIP retransmits; a full ring is like a busy NIC.
  }
  ++stack->mutableCounters().txFrames;
  stack->scheduleFlush();
  return ERR_OK;
}

err_t netifInit(netif* nif) {
  auto* stack = static_cast<LwipStack*>(nif->state);
  auto mac = stack->link().mac();
  nif->hwaddr_len = ETH_HWADDR_LEN;
  std::memcpy(nif->hwaddr, mac.data(), 6);
  nif->mtu = stack->link().mtu();
  nif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
  nif->name[0] = 'v';
  nif->name[1] = 'n';
  nif->output = etharp_output;
  nif->linkoutput = linkOutput;
  return ERR_OK;
}

}  // namespace

struct LwipStack::NetifHolder {
  netif nif{};
};

LwipStack::LwipStack(kj::UnixEventPort& events, kj::Timer& timer, FrameLink& link, Ipv4Config ip,
                     LwipLimits limits)
    : events_(events), timer_(timer), link_(link), limits_(limits), netif_(kj::heap<NetifHolder>()) {
  if (gStackExists) {
    detail_ = "another LwipStack exists in this process";
    return;
  }
  gStackExists = true;
  lwip_init();
  ip4_addr_t addr = toIp(ip.address), mask = toIp(ip.netmask), gw = toIp(ip.gateway);
  if (netif_add(&netif_->nif, &addr, &mask, &gw, this, netifInit, ethernet_input) == nullptr) {
    detail_ = "netif_add failed";
    return;
  }
  netif_set_default(&netif_->nif);
  netif_set_up(&netif_->nif);
  netif_set_link_up(&netif_->nif);
  up_ = true;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "lwIP %s on %u.%u.%u.%u/%d", LWIP_VERSION_STRING, ip.address >> 24,
                (ip.address >> 16) & 0xff, (ip.address >> 8) & 0xff, ip.address & 0xff,
                __builtin_popcount(ip.netmask));
  detail_ = buf;
}

std::string LwipStack::countersText() const {
  std::string s = "lwip-rx-dropped=" + std::to_string(counters_.rxDropped) + " lwip-tx-dropped=" + std::to_string(counters_.txDropped);
  std::string link = link_.counters();
  return link.empty() ? s : link + " " + s;
}

LwipStack::~LwipStack() noexcept {
  if (up_) {
    netif_remove(&netif_->nif);
    gStackExists = false;
  }
}

void LwipStack::service() {
  if (!up_) return;
  servicing_ = true;   // output from here on is flushed at the end of this pass
  link_.poll([this](std::span<const uint8_t> frame) {
    // Each frame gets its own PBUF_RAM buffer of exactly its size (never the fixed-size pool).
    if (frame.size() < 14 || frame.size() > 14u + link_.mtu() + 4u) {
      ++counters_.rxDropped;
      return;
    }
    // Runt frames are zero-padded to Ethernet's 60-byte minimum, as the wire would: lwIP 2.1.3's
    // ip4_input reads the IPv4 total-length field before checking that the header is there, so an
    // unpadded 15-byte frame made it read past the buffer (found by the malformed-frame test).
    constexpr size_t kMinFrame = 60;
    const size_t len = std::max(frame.size(), kMinFrame);
    pbuf* p = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(len), PBUF_RAM);
    if (p == nullptr) {
      ++counters_.rxDropped;
      return;
    }
    uint8_t padded[kMinFrame] = {};
    if (frame.size() < kMinFrame) {
      std::memcpy(padded, frame.data(), frame.size());
      pbuf_take(p, padded, static_cast<u16_t>(len));
    } else {
      pbuf_take(p, frame.data(), static_cast<u16_t>(len));
    }
    ++counters_.rxFrames;
    if (netif_->nif.input(p, &netif_->nif) != ERR_OK) pbuf_free(p);
  });
  sys_check_timeouts();
  servicing_ = false;
  link_.flush();   // everything this pass sent (ACKs for the whole RX batch): one notification
}

void LwipStack::scheduleFlush() {
  // Output outside service() (a connect's SYN, a close): flushed once this event-loop turn's
  // other work has run, so a burst still costs one notification.
  if (servicing_ || flushScheduled_) return;
  flushScheduled_ = true;
  flushing_ = kj::evalLater([this]() {
    flushScheduled_ = false;
    link_.flush();
  }).eagerlyEvaluate(nullptr);
}

kj::Promise<void> LwipStack::timerLoop() {
  // lwIP's fastest timer is TCP's 250 ms; ARP and reassembly are slower. sys_timeouts_sleeptime()
  // says when the next one is due.
  u32_t sleep = sys_timeouts_sleeptime();
  if (sleep == SYS_TIMEOUTS_SLEEPTIME_INFINITE || sleep > 250) sleep = 250;
  return timer_.afterDelay(std::max<u32_t>(sleep, 1) * kj::MILLISECONDS).then([this]() {
    // The device's health costs a trapped register read (about a millisecond under TCG while the
    // device is busy: 3% of netd's time over handshakes at every timer): once a second is plenty.
    if (timer_.now() - lastHealthCheck_ >= 1 * kj::SECONDS) {
      lastHealthCheck_ = timer_.now();
      link_.checkHealth();
      if (linkFailure_.empty()) {
        linkFailure_ = link_.failure();
        if (!linkFailure_.empty()) audit("netd", "link-broken", {{"detail", linkFailure_}, {"action", "stack down; connects refused"}});
      }
    }
    service();
    return timerLoop();
  });
}

kj::Promise<void> LwipStack::interruptLoop() {
  return observer_->whenBecomesReadable().then([this]() {
    link_.acknowledge();
    service();
    return interruptLoop();
  });
}

kj::Promise<void> LwipStack::run() {
  if (!up_) return kj::NEVER_DONE;
  service();
  int fd = link_.eventFd();
  if (fd < 0) return timerLoop();
  observer_ = kj::heap<kj::UnixEventPort::FdObserver>(
      events_, fd, kj::UnixEventPort::FdObserver::OBSERVE_READ);
  return kj::joinPromises(kj::arr(timerLoop(), interruptLoop()));
}

kj::Promise<Result<kj::Own<TcpConnection>, ConnectError>> LwipStack::connect(uint32_t addressHostOrder, uint16_t port,
                                                                             uint32_t timeoutMs) {
  using R = Result<kj::Own<TcpConnection>, ConnectError>;
  if (!up()) return R(fail(ConnectError::kNoStack, detail()));
  if (connections_ >= limits_.maxConnections) {
    return R(fail(ConnectError::kTooMany, "connection limit " + std::to_string(limits_.maxConnections) + " reached"));
  }
  tcp_pcb* pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
  if (pcb == nullptr) return R(fail(ConnectError::kTooMany, "lwIP has no free TCP control block"));
  auto paf = kj::newPromiseAndFulfiller<R>();
  auto pending = kj::heap<PendingConnect>();
  pending->stack = this;
  pending->pcb = pcb;
  pending->fulfiller = kj::mv(paf.fulfiller);
  PendingConnect* raw = pending.get();
  tcp_arg(pcb, raw);
  tcp_err(pcb, onConnectErr);
  ip_addr_t dest;
  ip_addr_copy_from_ip4(dest, toIp(addressHostOrder));
  err_t e = tcp_connect(pcb, &dest, port, onConnected);
  if (e != ERR_OK) {
    tcp_abort(pcb);
    return R(fail(ConnectError::kInternal, std::string("tcp_connect: ") + errName(e)));
  }
  service();
  auto timeout = timer_.afterDelay(timeoutMs * kj::MILLISECONDS).then([raw]() {
    if (raw->pcb != nullptr && !raw->done) {
      tcp_pcb* p = raw->pcb;
      raw->pcb = nullptr;
      tcp_arg(p, nullptr);
      tcp_err(p, nullptr);
      tcp_abort(p);
    }
    raw->finish(fail(ConnectError::kTimeout, "no answer within the connect timeout"));
  });
  return paf.promise.exclusiveJoin(timeout.then([]() -> kj::Promise<R> { return kj::NEVER_DONE; }))
      .attach(kj::mv(pending));
}

}  // namespace capnet

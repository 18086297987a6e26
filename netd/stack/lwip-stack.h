// netd's TCP/IP stack: lwIP (NO_SYS, raw TCP API) over a FrameLink, driven by netd's KJ event
// loop — the link's interrupt eventfd wakes it, lwIP's timers run from a kj::Timer, nothing spins.
// lwIP keeps global state, so a process has at most one LwipStack.
#pragma once

#include <kj/async-unix.h>
#include <kj/timer.h>

#include <cstdint>
#include <string>

#include "netd/frame-link.h"
#include "netd/tcp-stack.h"

namespace capnet {

struct Ipv4Config {
  uint32_t address = 0x0a00020f;   // 10.0.2.15
  uint32_t netmask = 0xffffff00;   // /24
  uint32_t gateway = 0;            // none: only the local subnet is reachable.
};

struct LwipLimits {
  size_t maxConnections = 48;
};

class LwipStack final : public TcpStack {
 public:
  LwipStack(kj::UnixEventPort& events, kj::Timer& timer, FrameLink& link, Ipv4Config ip,
            LwipLimits limits = {});
  ~LwipStack() noexcept override;

  bool up() const override { return up_ && linkFailure_.empty(); }
  std::string detail() const override { return linkFailure_.empty() ? detail_ : "link broken: " + linkFailure_; }
  std::string countersText() const override;
  kj::Promise<Result<kj::Own<TcpConnection>, ConnectError>> connect(uint32_t addressHostOrder, uint16_t port,
                                                                    uint32_t timeoutMs) override;

  // Runs the stack: receive interrupts and lwIP's timers. Never resolves while the stack lives.
  kj::Promise<void> run();

  // Delivers frames waiting on the link and runs due timers (run() does this on its own; tests
  // that drive time by hand call it).
  void service();

  size_t connections() const { return connections_; }
  struct Counters {
    uint64_t rxFrames = 0, txFrames = 0, rxDropped = 0, txDropped = 0;
  };
  const Counters& counters() const { return counters_; }

  // Called by connections (internal).
  void connectionOpened() { ++connections_; }
  void connectionClosed() { --connections_; }
  FrameLink& link() { return link_; }
  void scheduleFlush();   // the link is flushed later this event-loop turn (frames sent outside service())
  Counters& mutableCounters() { return counters_; }

 private:
  kj::Promise<void> timerLoop();
  kj::Promise<void> interruptLoop();

  kj::UnixEventPort& events_;
  kj::Timer& timer_;
  FrameLink& link_;
  LwipLimits limits_;
  bool up_ = false;
  std::string detail_;
  size_t connections_ = 0;
  Counters counters_;
  struct NetifHolder;
  kj::Own<NetifHolder> netif_;
  kj::Own<kj::UnixEventPort::FdObserver> observer_;
  bool servicing_ = false;        // inside service(), which flushes when it ends
  bool flushScheduled_ = false;
  kj::Maybe<kj::Promise<void>> flushing_;
  kj::TimePoint lastHealthCheck_ = kj::origin<kj::TimePoint>();   // the link's, at most once a second
  std::string linkFailure_;   // set once the link reports it no longer works: the stack is down
};

}  // namespace capnet

// Waiting in tests: on a condition, bounded, never a fixed sleep where a condition exists.
//   runUntil(io, cond, limit)  runs the event loop (timers, sockets) until cond() holds or `limit`
//                              passes; returns cond(). For code on this thread's loop.
//   waitUntil(cond, limit)     the same for code that runs elsewhere (another process or thread):
//                              checks every 5 ms without an event loop.
// A check that something does NOT happen has no condition to wait for: it runs the loop for a
// fixed bounded span (runFor) and says so where it is used.
#pragma once

#include <kj/async-io.h>
#include <kj/time.h>

#include <chrono>
#include <thread>

namespace capnet::testing {

template <typename Cond>
bool runUntil(kj::AsyncIoContext& io, Cond&& cond, kj::Duration limit = 5 * kj::SECONDS) {
  auto& timer = io.provider->getTimer();
  const kj::TimePoint end = timer.now() + limit;
  while (!cond()) {
    if (timer.now() >= end) return false;
    timer.afterDelay(1 * kj::MILLISECONDS).wait(io.waitScope);
  }
  return true;
}

// Runs the event loop for `span`: for checks that something does not happen meanwhile.
inline void runFor(kj::AsyncIoContext& io, kj::Duration span) { io.provider->getTimer().afterDelay(span).wait(io.waitScope); }

template <typename Cond>
bool waitUntil(Cond&& cond, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace capnet::testing

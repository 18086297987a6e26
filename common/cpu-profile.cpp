#include "common/cpu-profile.h"

#include <dlfcn.h>
#include <signal.h>
#include <sys/time.h>
#include <ucontext.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

namespace capnet {
namespace {

// An open-addressed table of (address, count), written only by the signal handler with lock-free
// atomics (async-signal-safe) and read after the timer is stopped.
constexpr size_t kSlots = 1 << 13;
constexpr size_t kProbes = 32;
constexpr size_t kShown = 2000;
std::array<std::atomic<uintptr_t>, kSlots> gPc{};
std::array<std::atomic<uint32_t>, kSlots> gCount{};
std::atomic<uint64_t> gDropped{0};

void onProf(int, siginfo_t*, void* context) {
  const auto* uc = static_cast<const ucontext_t*>(context);
#if defined(__x86_64__)
  const uintptr_t pc = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
#else
  const uintptr_t pc = 0;
  (void)uc;
#endif
  if (pc == 0) return;
  const size_t start = static_cast<size_t>((pc * 0x9E3779B97F4A7C15ull) >> 51) & (kSlots - 1);
  for (size_t i = 0; i < kProbes; ++i) {
    const size_t s = (start + i) & (kSlots - 1);
    uintptr_t seen = gPc[s].load(std::memory_order_relaxed);
    if (seen == 0 && gPc[s].compare_exchange_strong(seen, pc, std::memory_order_relaxed)) seen = pc;
    if (seen == pc) {
      gCount[s].fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  gDropped.fetch_add(1, std::memory_order_relaxed);
}

void setTimer(bool on) {
  // 1 ms of CPU time between samples; the kernel delivers at most one per tick.
  itimerval t{};
  if (on) t.it_interval.tv_usec = t.it_value.tv_usec = 1000;
  ::setitimer(ITIMER_PROF, &t, nullptr);
}

void start() {
  setTimer(false);
  for (size_t s = 0; s < kSlots; ++s) {
    gPc[s].store(0, std::memory_order_relaxed);
    gCount[s].store(0, std::memory_order_relaxed);
  }
  gDropped.store(0, std::memory_order_relaxed);
  struct sigaction sa {};
  sa.sa_sigaction = onProf;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGPROF, &sa, nullptr);
  setTimer(true);
}

void stopAndPrint(const char* component) {
  setTimer(false);
  std::vector<std::pair<uint32_t, uintptr_t>> seen;
  uint64_t total = 0;
  for (size_t s = 0; s < kSlots; ++s) {
    const uint32_t n = gCount[s].load(std::memory_order_relaxed);
    const uintptr_t pc = gPc[s].load(std::memory_order_relaxed);
    if (n == 0 || pc == 0) continue;
    seen.emplace_back(n, pc);
    total += n;
  }
  std::sort(seen.begin(), seen.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  const size_t shown = std::min(seen.size(), kShown);
  std::printf("%s: cpu-profile samples=%" PRIu64 " distinct=%zu dropped=%" PRIu64 " shown=%zu\n", component, total, seen.size(),
              gDropped.load(std::memory_order_relaxed), shown);
  for (size_t i = 0; i < shown; ++i) {
    Dl_info info{};
    const char* module = "?";
    uintptr_t offset = seen[i].second;
    if (::dladdr(reinterpret_cast<void*>(seen[i].second), &info) != 0 && info.dli_fname != nullptr) {
      const char* slash = std::strrchr(info.dli_fname, '/');
      module = slash != nullptr ? slash + 1 : info.dli_fname;
      offset = seen[i].second - reinterpret_cast<uintptr_t>(info.dli_fbase);
    }
    std::printf("%s: cpu-profile pc module=%s offset=0x%" PRIxPTR " samples=%u\n", component, module, offset, seen[i].first);
  }
  std::fflush(stdout);
}

kj::Promise<void> loop(kj::UnixEventPort& port, const char* component, bool running) {
  return port.onSignal(SIGUSR2).then([&port, component, running](siginfo_t) {
    if (running) {
      stopAndPrint(component);
    } else {
      start();
    }
    return loop(port, component, !running);
  });
}

}  // namespace

void captureProfileSignals() { kj::UnixEventPort::captureSignal(SIGUSR2); }

kj::Promise<void> serveCpuProfile(kj::UnixEventPort& port, const char* component) { return loop(port, component, false); }

}  // namespace capnet

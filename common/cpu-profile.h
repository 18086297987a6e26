// A sampling CPU profiler for a daemon in the guest, where perf is not available: while it runs,
// SIGPROF arrives at the rate the process uses CPU (user and system time; the kernel checks the
// timer at each tick, so at most HZ samples a second) and records the interrupted instruction's
// address. SIGUSR2 toggles it: the first clears the samples and starts, the next stops and prints
// one line per address, most samples first (SIGUSR1 is KJ's own):
//   <component>: cpu-profile samples=N distinct=D dropped=X shown=S
//   <component>: cpu-profile pc module=NAME offset=0xHEX samples=K
// The host symbolises module+offset against the build's unstripped binary and the same Debian
// libraries (scripts/bench-net.sh). Time in a system call shows as its libc wrapper. Off unless
// the daemon asks for it (netd --cpu-profile: the bench profile only).
#pragma once

#include <kj/async-unix.h>

namespace capnet {

// Blocks SIGUSR2 for KJ's event port. Call before any thread starts (threads inherit the mask; a
// thread without it would die of the signal's default action).
void captureProfileSignals();

// For the daemon's life: each SIGUSR2 starts sampling, or stops it and prints.
kj::Promise<void> serveCpuProfile(kj::UnixEventPort& port, const char* component);

}  // namespace capnet

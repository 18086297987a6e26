// Connecting to a Unix socket as a given uid, for clients that act for several principals (the
// in-guest selftest, host tests). The kernel records the connecting thread's credentials for
// SO_PEERCRED, so the connect runs on a short-lived thread whose own credentials (a raw
// setresuid(2) syscall changes only the calling thread) are `uid`. Requires root for any uid but
// the caller's own.
#pragma once

#include <sys/types.h>

#include <string>

namespace capnet {

// Returns a connected, close-on-exec fd, or -1 (errno describes the failure).
int connectUnixAs(uid_t uid, const std::string& path);

}  // namespace capnet

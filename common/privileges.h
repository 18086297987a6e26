// Dropping root at the top of main, before any untrusted input is read.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.h"

namespace capnet {

enum class PrivilegeError { kFailed = 1 };

// setgroups({}), setgid(gid), setuid(uid), then verifies that root cannot be regained.
// A no-op success when uid is already the current uid and not root.
Result<Ok, PrivilegeError> dropPrivileges(uid_t uid, gid_t gid);

}  // namespace capnet

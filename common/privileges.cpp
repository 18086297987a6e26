#include "common/privileges.h"

#include <grp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace capnet {

Result<Ok, PrivilegeError> dropPrivileges(uid_t uid, gid_t gid) {
  if (getuid() == uid && geteuid() == uid && uid != 0) return Ok{};
  auto err = [](const char* what) {
    return fail(PrivilegeError::kFailed, std::string(what) + ": " + std::strerror(errno));
  };
  if (setgroups(0, nullptr) != 0) return err("setgroups");
  if (setresgid(gid, gid, gid) != 0) return err("setresgid");
  if (setresuid(uid, uid, uid) != 0) return err("setresuid");
  if (uid != 0 && (setuid(0) == 0 || geteuid() == 0)) {
    return fail(PrivilegeError::kFailed, "root could be regained after dropping privileges");
  }
  return Ok{};
}

}  // namespace capnet

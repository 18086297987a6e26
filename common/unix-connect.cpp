#include "common/unix-connect.h"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <thread>

namespace capnet {

int connectUnixAs(uid_t uid, const std::string& path) {
  int fd = -1;
  int err = 0;
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  std::thread t([&]() {
    // Only this thread's credentials change (the raw syscall, unlike glibc's wrapper, is not
    // broadcast to the other threads); the thread ends right after.
    if (uid != getuid() && syscall(SYS_setresuid, uid, uid, uid) != 0) {
      err = errno;
      return;
    }
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
      err = errno;
      return;
    }
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      err = errno;
      close(s);
      return;
    }
    fd = s;
  });
  t.join();
  if (fd < 0) errno = err;
  return fd;
}

}  // namespace capnet

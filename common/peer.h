// Who is on the other end of a Unix socket, as the kernel says (SO_PEERCRED). capnet never
// trusts an identity claimed inside a message.
#pragma once

#include <sys/types.h>

#include <optional>

namespace capnet {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// nullopt when fd is not a connected Unix socket.
std::optional<PeerCredentials> peerCredentials(int fd);

}  // namespace capnet

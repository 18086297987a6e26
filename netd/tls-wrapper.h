// The seam between netd's connect gate and TLS (netd/tls/, wolfSSL): wraps a connected
// TcpConnection in a TLS client under the grant's trust policy. Without a wrapper installed, netd
// refuses every TLS connect (it never falls back to plain TCP).
#pragma once

#include <kj/async.h>

#include <string>

#include "netd/grant-registry.h"
#include "idl/net.capnp.h"
#include "netd/tcp-stack.h"

namespace capnet {

struct TlsFailure {
  idl::ConnectRefusal reason = idl::ConnectRefusal::TLS_HANDSHAKE_FAILED;
  std::string detail;
};

struct TlsSession {
  kj::Own<TcpConnection> connection;
  std::string version;       // "TLSv1.3"
  std::string cipherSuite;
  std::string keyExchange;   // the group, e.g. "X25519"
  std::array<uint8_t, 32> leafSha256{};
};

class TlsWrapper {
 public:
  virtual ~TlsWrapper() = default;
  virtual kj::Promise<std::variant<TlsSession, TlsFailure>> wrap(kj::Own<TcpConnection> inner,
                                                                 idl::Grant::Reader grant,
                                                                 std::string serverName) = 0;
};

}  // namespace capnet

// TLS in netd: a wolfSSL client over a connected TcpConnection (lwIP), driven asynchronously on
// netd's event loop through wolfSSL's custom I/O callbacks and memory buffers. Policy comes from
// the grant (netd has no config): minimum version, certificate-time policy, SPKI pins and their
// expiry. Peer verification is always on, the host name is always checked, SNI is always sent, and
// roots come only from the trust store's directories (pkg://trust/ and state:/trust/installed/),
// never from the machine's system store.
#pragma once

#include <kj/timer.h>

#include <string>
#include <vector>

#include "common/clock.h"
#include "netd/tls-wrapper.h"

namespace capnet {

class WolfTlsWrapper final : public TlsWrapper {
 public:
  // `rootDirs`: directories of PEM roots, read at every handshake (an installed root applies to the
  // next connection).
  WolfTlsWrapper(kj::Timer& timer, const Clock& clock, std::vector<std::string> rootDirs);
  ~WolfTlsWrapper() override;

  kj::Promise<std::variant<TlsSession, TlsFailure>> wrap(kj::Own<TcpConnection> inner, const GrantRecord& grant,
                                                         std::string serverName) override;

 private:
  kj::Timer& timer_;
  const Clock& clock_;
  std::vector<std::string> rootDirs_;
};

}  // namespace capnet

// TLS in netd: a wolfSSL client over a connected TcpConnection (lwIP), driven asynchronously on
// netd's event loop through wolfSSL's custom I/O callbacks and memory buffers. Policy comes from
// the grant (netd has no config): minimum version, certificate-time policy, SPKI pins and their
// expiry. Peer verification is always on, the host name is always checked, SNI is always sent, and
// roots come only from the trust store's directories (pkg://trust/ and state:/trust/installed/),
// never from the machine's system store.
#pragma once

#include <kj/timer.h>

#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/paths.h"
#include "netd/tls-wrapper.h"

namespace capnet {

class WolfTlsWrapper final : public TlsWrapper {
 public:
  // Roots come from the trust store under `roots` (trust/trust-store.h). They are parsed once into
  // a wolfSSL context shared by every connection, and parsed again only when the store changes (a
  // root installed or removed through capd changes a directory's modification or change time):
  // an installed root applies to the next connection. Only CA certificates are loaded.
  WolfTlsWrapper(kj::Timer& timer, const Clock& clock, Roots roots);
  ~WolfTlsWrapper() override;

  kj::Promise<std::variant<TlsSession, TlsFailure>> wrap(kj::Own<TcpConnection> inner, idl::Grant::Reader grant,
                                                         std::string serverName) override;

  // How often the trust store was parsed (tests: the cache works).
  size_t rootLoads() const { return rootLoads_; }

  struct RootSet;

 private:
  // The current root set, reloaded when the store's directories changed.
  std::shared_ptr<RootSet> rootSet();

  kj::Timer& timer_;
  const Clock& clock_;
  Roots roots_;
  std::shared_ptr<RootSet> rootSet_;
  std::string rootStamp_;
  size_t rootLoads_ = 0;
};

}  // namespace capnet

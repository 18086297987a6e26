#include "netd/server/netd-server.h"

#include <kj/debug.h>

#include <algorithm>

#include "common/audit.h"
#include "idl/gate.h"

namespace capnet {

std::string_view refusalName(idl::ConnectRefusal r) {
  switch (r) {
    case idl::ConnectRefusal::INTERNAL: return "internal";
    case idl::ConnectRefusal::DEVNET_OFF: return "devnet-off";
    case idl::ConnectRefusal::CAPD_UNREACHABLE: return "capd-unreachable";
    case idl::ConnectRefusal::NO_OS_STACK: return "no-os-stack";
    case idl::ConnectRefusal::NO_CAP: return "no-cap";
    case idl::ConnectRefusal::CAP_EXPIRED: return "expired";
    case idl::ConnectRefusal::CAP_REVOKED: return "revoked";
    case idl::ConnectRefusal::WRONG_UID: return "wrong-uid";
    case idl::ConnectRefusal::OUT_OF_SCOPE: return "out-of-scope";
    case idl::ConnectRefusal::UNKNOWN_HOST: return "unknown-host";
    case idl::ConnectRefusal::BAD_REQUEST: return "bad-request";
    case idl::ConnectRefusal::CONNECT_TIMEOUT: return "connect-timeout";
    case idl::ConnectRefusal::CONNECT_REFUSED: return "connect-refused";
    case idl::ConnectRefusal::TLS_UNTRUSTED_ISSUER: return "untrusted-issuer";
    case idl::ConnectRefusal::TLS_EXPIRED: return "expired-certificate";
    case idl::ConnectRefusal::TLS_NOT_YET_VALID: return "not-yet-valid";
    case idl::ConnectRefusal::TLS_HOSTNAME_MISMATCH: return "hostname-mismatch";
    case idl::ConnectRefusal::TLS_PIN_MISMATCH: return "pin-mismatch";
    case idl::ConnectRefusal::TLS_VERSION_TOO_OLD: return "version-too-old";
    case idl::ConnectRefusal::TLS_HANDSHAKE_TIMEOUT: return "handshake-timeout";
    case idl::ConnectRefusal::TLS_PEER_CLOSED: return "peer-closed";
    case idl::ConnectRefusal::TLS_POLICY_VIOLATION: return "policy-violation";
    case idl::ConnectRefusal::TLS_HANDSHAKE_FAILED: return "handshake-failed";
    case idl::ConnectRefusal::TOO_MANY_CONNECTIONS: return "too-many-connections";
  }
  return "internal";
}

namespace {

std::string formatIpv4(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." +
         std::to_string((a >> 8) & 0xff) + "." + std::to_string(a & 0xff);
}

// netd has no principals: "net.tcp.connect" is enforced by the grant check inside connect (capd
// checked the capability when it minted the grant); "principal" is any local uid; "capd" is the
// configured capd uid.
class NetdAuthorizer final : public Authorizer {
 public:
  NetdAuthorizer(uid_t peer, uid_t capdUid) : peer_(peer), capdUid_(capdUid) {}
  bool isPrincipal() const override { return true; }
  bool isCapd() const override { return peer_ == capdUid_; }
  bool holds(std::string_view capability) const override { return capability == "net.tcp.connect"; }
  std::string who() const override { return "uid:" + std::to_string(peer_); }

 private:
  uid_t peer_;
  uid_t capdUid_;
};

class ControlImpl final : public idl::NetControl::Server {
 public:
  ControlImpl(Netd& netd, uint64_t id) : netd_(netd), id_(id) { netd_.sessionOpened(id_); }
  ~ControlImpl() noexcept { netd_.sessionClosed(id_); }

  kj::Promise<void> announce(AnnounceContext context) override {
    if (!live()) return KJ_EXCEPTION(DISCONNECTED, "a newer capd session replaced this one");
    auto p = context.getParams();
    netd_.announce(p.getDevnetEnabled(), p.getGeneration());
    return kj::READY_NOW;
  }

  kj::Promise<void> register_(RegisterContext context) override {
    if (!live()) return KJ_EXCEPTION(DISCONNECTED, "a newer capd session replaced this one");
    auto g = context.getParams().getGrant();
    GrantRecord r;
    auto token = g.getToken();
    auto scope = g.getScope();
    // capd is trusted, but its messages are still checked: a malformed grant is refused, not stored.
    if (token.size() != r.token.size()) return KJ_EXCEPTION(FAILED, "grant.token: must be 16 bytes");
    if (scope.getPort() == 0) return KJ_EXCEPTION(FAILED, "grant.scope.port: must not be 0");
    if (scope.getHost().size() == 0 || scope.getHost().size() > 253) {
      return KJ_EXCEPTION(FAILED, "grant.scope.host: empty or too long");
    }
    std::string scheme = scope.getScheme();
    if (scheme != "tcp" && scheme != "tls" && scheme != "http" && scheme != "https") {
      return KJ_EXCEPTION(FAILED, "grant.scope.scheme: unknown", scheme);
    }
    if (!netd_.devnetEnabled()) return KJ_EXCEPTION(FAILED, "grant registered while devnet is off");
    std::copy(token.begin(), token.end(), r.token.begin());
    r.subjectUid = g.getSubjectUid();
    r.holderUid = g.getHolderUid();
    r.scheme = scheme;
    r.host = scope.getHost();
    r.port = scope.getPort();
    r.address = g.getAddress();
    r.expiresAtMs = g.getExpiresAtMs();
    auto tls = g.getTls();
    r.tls.minVersion = tls.getMinVersion() == idl::TlsVersion::TLS12 ? MinTlsVersion::kTls12 : MinTlsVersion::kTls13;
    r.tls.timePolicy = tls.getTimePolicy() == idl::CertTimePolicy::IGNORE_VALIDITY ? TimePolicy::kIgnoreValidity
                                                                                   : TimePolicy::kEnforce;
    for (auto pin : tls.getPins()) {
      if (pin.getSpkiSha256().size() != 32) return KJ_EXCEPTION(FAILED, "grant.tls.pins: must be 32 bytes");
      std::array<uint8_t, 32> d{};
      std::copy(pin.getSpkiSha256().begin(), pin.getSpkiSha256().end(), d.begin());
      r.tls.pins.push_back(d);
    }
    r.tls.pinsExpireAtMs = tls.getPinsExpireAtMs();
    r.connectTimeoutMs = std::clamp<uint32_t>(g.getConnectTimeoutMs(), 1, 600000);
    r.handshakeTimeoutMs = std::clamp<uint32_t>(g.getHandshakeTimeoutMs(), 1, 600000);
    netd_.grants().add(std::move(r));
    return kj::READY_NOW;
  }

  kj::Promise<void> revoke(RevokeContext context) override {
    if (!live()) return KJ_EXCEPTION(DISCONNECTED, "a newer capd session replaced this one");
    auto t = context.getParams().getToken();
    context.getResults().setFound(netd_.grants().revoke(std::span<const uint8_t>(t.begin(), t.size())));
    return kj::READY_NOW;
  }

  kj::Promise<void> revokeAll(RevokeAllContext context) override {
    if (!live()) return KJ_EXCEPTION(DISCONNECTED, "a newer capd session replaced this one");
    size_t n = netd_.grants().revokeAll();
    audit("netd", "revoke-all", {{"count", std::to_string(n)}, {"by", "capd"}});
    context.getResults().setCount(static_cast<uint32_t>(n));
    return kj::READY_NOW;
  }

 private:
  bool live() const { return netd_.isLiveSession(id_); }
  Netd& netd_;
  uint64_t id_;
};

// One connection as a ByteStream. Reads and writes are each serialised (one in flight at a time per
// direction); the connection closes when the capability is dropped.
class ByteStreamImpl final : public idl::ByteStream::Server {
 public:
  explicit ByteStreamImpl(kj::Own<TcpConnection> conn) : conn_(kj::mv(conn)) {}

  kj::Promise<void> read(ReadContext context) override {
    uint32_t max = std::min(context.getParams().getMaxBytes(), kMaxStreamChunk);
    if (max == 0) return KJ_EXCEPTION(FAILED, "read: maxBytes must be at least 1");
    KJ_IF_MAYBE(c, conn_) {
      auto& conn = **c;
      auto op = readChain_.addBranch().then([&conn, max]() { return conn.read(max); })
                    .then([context](ReadResult r) mutable {
                      auto results = context.getResults();
                      results.setData(r.data);
                      results.setEof(r.eof);
                    });
      auto forked = op.fork();
      readChain_ = forked.addBranch().then([]() {}, [](kj::Exception&&) {}).fork();
      return forked.addBranch();
    }
    return KJ_EXCEPTION(DISCONNECTED, "stream closed");
  }

  kj::Promise<void> write(WriteContext context) override {
    auto data = context.getParams().getData();
    if (data.size() > kMaxStreamChunk) return KJ_EXCEPTION(FAILED, "write: at most 64 KiB per call");
    KJ_IF_MAYBE(c, conn_) {
      auto& conn = **c;
      auto copy = kj::heapArray<kj::byte>(data);
      auto op = writeChain_.addBranch().then([&conn, copy = kj::mv(copy)]() mutable {
        auto p = conn.write(copy);
        return p.attach(kj::mv(copy));
      });
      auto forked = op.fork();
      writeChain_ = forked.addBranch().then([]() {}, [](kj::Exception&&) {}).fork();
      return forked.addBranch();
    }
    return KJ_EXCEPTION(DISCONNECTED, "stream closed");
  }

  kj::Promise<void> shutdownWrite(ShutdownWriteContext) override {
    KJ_IF_MAYBE(c, conn_) {
      auto& conn = **c;
      auto op = writeChain_.addBranch().then([&conn]() { return conn.shutdownWrite(); });
      auto forked = op.fork();
      writeChain_ = forked.addBranch().then([]() {}, [](kj::Exception&&) {}).fork();
      return forked.addBranch();
    }
    return KJ_EXCEPTION(DISCONNECTED, "stream closed");
  }

  kj::Promise<void> close(CloseContext) override {
    // A full close: FIN after what is queued, then the connection is released (lwIP finishes the
    // close handshake). Dropping the capability without close() resets the connection instead.
    KJ_IF_MAYBE(c, conn_) {
      auto conn = kj::mv(*c);
      conn_ = nullptr;
      auto& ref = *conn;
      return ref.shutdownWrite().then([]() {}, [](kj::Exception&&) {}).attach(kj::mv(conn));
    }
    return kj::READY_NOW;
  }

 private:
  kj::Maybe<kj::Own<TcpConnection>> conn_;
  kj::ForkedPromise<void> readChain_ = kj::Promise<void>(kj::READY_NOW).fork();
  kj::ForkedPromise<void> writeChain_ = kj::Promise<void>(kj::READY_NOW).fork();
};

idl::ConnectRefusal toRefusal(GrantDecision d) {
  switch (d) {
    case GrantDecision::kExpired: return idl::ConnectRefusal::CAP_EXPIRED;
    case GrantDecision::kRevoked: return idl::ConnectRefusal::CAP_REVOKED;
    case GrantDecision::kWrongUid: return idl::ConnectRefusal::WRONG_UID;
    case GrantDecision::kOutOfScope: return idl::ConnectRefusal::OUT_OF_SCOPE;
    case GrantDecision::kNoCap:
    case GrantDecision::kAllowed: break;
  }
  return idl::ConnectRefusal::NO_CAP;
}

idl::ConnectRefusal toRefusal(ConnectError e) {
  switch (e) {
    case ConnectError::kNoStack: return idl::ConnectRefusal::NO_OS_STACK;
    case ConnectError::kTimeout: return idl::ConnectRefusal::CONNECT_TIMEOUT;
    case ConnectError::kRefused: return idl::ConnectRefusal::CONNECT_REFUSED;
    case ConnectError::kTooMany: return idl::ConnectRefusal::TOO_MANY_CONNECTIONS;
    case ConnectError::kInternal: break;
  }
  return idl::ConnectRefusal::INTERNAL;
}

class NetConnectImpl final : public idl::NetConnect::Server {
 public:
  NetConnectImpl(Netd& netd, uid_t uid) : netd_(netd), uid_(uid) {}

  kj::Promise<void> connect(ConnectContext context) override {
    auto p = context.getParams();
    std::string host = p.getHost();
    uint16_t port = p.getPort();
    bool useTls = p.getUseTls();
    std::string serverName = p.getTls().getServerName();
    if (serverName.empty()) serverName = host;
    auto refuse = [&](idl::ConnectRefusal reason, std::string detail) {
      if (reason == idl::ConnectRefusal::DEVNET_OFF) {
        auditRaw("net: devnet off deny");
      }
      audit("net", "connect deny", {{"reason", refusalName(reason)}, {"uid", std::to_string(uid_)},
                                     {"host", host}, {"port", std::to_string(port)}});
      auto r = context.getResults().initResult().initRefused();
      r.setReason(reason);
      r.setDetail(detail);
      return kj::Promise<void>(kj::READY_NOW);
    };

    if (host.empty() || host.size() > 253 || port == 0) {
      return refuse(idl::ConnectRefusal::BAD_REQUEST, "host must be 1..253 bytes and port non-zero");
    }
    if (serverName.size() > 253) return refuse(idl::ConnectRefusal::BAD_REQUEST, "tls.serverName longer than 253 bytes");
    // 1. policy state, as capd announced it.
    if (!netd_.capdConnected()) {
      return refuse(idl::ConnectRefusal::CAPD_UNREACHABLE, "netd has no control channel from capd: no policy, no connects");
    }
    if (!netd_.devnetEnabled()) {
      return refuse(idl::ConnectRefusal::DEVNET_OFF, "network.devnet.enabled is false");
    }
    // 2. the grant: present, known, unrevoked, unexpired, presented by its holder, in scope.
    auto token = p.getGrant();
    GrantCheck check = netd_.grants().check(std::span<const uint8_t>(token.begin(), token.size()), uid_, useTls, host, port);
    if (!check.allowed()) {
      std::string detail = std::string("grant check: ") + std::string(grantDecisionReason(check.decision));
      return refuse(toRefusal(check.decision), detail);
    }
    GrantRecord grant = *check.grant;   // copy: the registry may change while we connect.
    // 3. the stack.
    if (!netd_.stack().up()) {
      return refuse(idl::ConnectRefusal::NO_OS_STACK, "no OS network stack: " + netd_.stack().detail());
    }
    if (useTls && netd_.tls() == nullptr) {
      return refuse(idl::ConnectRefusal::TLS_HANDSHAKE_FAILED, "tls not available in this netd");
    }
    audit("net", "connect allow", {{"uid", std::to_string(uid_)}, {"host", host}, {"port", std::to_string(port)},
                                   {"address", formatIpv4(grant.address)}, {"tls", useTls ? "yes" : "no"}});
    return netd_.stack()
        .connect(grant.address, port, grant.connectTimeoutMs)
        .then([this, context, grant, host, port, useTls, serverName](
                  Result<kj::Own<TcpConnection>, ConnectError> r) mutable -> kj::Promise<void> {
          if (!r.ok()) {
            auto reason = toRefusal(r.code());
            audit("net", "connect fail", {{"reason", refusalName(reason)}, {"uid", std::to_string(uid_)},
                                          {"host", host}, {"detail", r.message()}});
            auto refused = context.getResults().initResult().initRefused();
            refused.setReason(reason);
            refused.setDetail(r.message());
            return kj::READY_NOW;
          }
          auto conn = kj::mv(r).value();
          uint16_t localPort = conn->localPort();
          if (!useTls) {
            auto c = context.getResults().initResult().initConnected();
            fillInfo(c.initInfo(), grant, localPort);
            c.setStream(kj::heap<ByteStreamImpl>(kj::mv(conn)));
            return kj::READY_NOW;
          }
          return netd_.tls()->wrap(kj::mv(conn), grant, serverName)
              .then([this, context, grant, host, localPort](std::variant<TlsSession, TlsFailure> t) mutable {
                if (auto* f = std::get_if<TlsFailure>(&t)) {
                  audit("net", "tls deny", {{"reason", refusalName(f->reason)}, {"uid", std::to_string(uid_)},
                                            {"host", host}, {"detail", f->detail}});
                  auto refused = context.getResults().initResult().initRefused();
                  refused.setReason(f->reason);
                  refused.setDetail(f->detail);
                  return;
                }
                auto& s = std::get<TlsSession>(t);
                auto c = context.getResults().initResult().initConnected();
                auto info = c.initInfo();
                fillInfo(info, grant, localPort);
                info.setTlsVersion(s.version);
                info.setCipherSuite(s.cipherSuite);
                info.setLeafSha256(kj::arrayPtr(s.leafSha256.data(), s.leafSha256.size()));
                c.setStream(kj::heap<ByteStreamImpl>(kj::mv(s.connection)));
              });
        });
  }

  kj::Promise<void> status(StatusContext context) override {
    auto r = context.getResults();
    r.setStackUp(netd_.stack().up());
    r.setStackDetail(netd_.stack().detail());
    r.setDevnetEnabled(netd_.devnetEnabled());
    r.setCapdConnected(netd_.capdConnected());
    return kj::READY_NOW;
  }

 private:
  static void fillInfo(idl::ConnectionInfo::Builder info, const GrantRecord& g, uint16_t localPort) {
    info.setRemoteAddress(formatIpv4(g.address));
    info.setRemotePort(g.port);
    info.setLocalPort(localPort);
    info.setTimePolicy(g.tls.timePolicy == TimePolicy::kIgnoreValidity ? "ignore-validity" : "enforce");
  }

  Netd& netd_;
  uid_t uid_;
};

}  // namespace

Netd::Netd(const Clock& clock, kj::Timer& timer, TcpStack& stack, uid_t capdUid, TlsWrapper* tls)
    : clock_(clock), timer_(timer), stack_(stack), capdUid_(capdUid), tls_(tls), grants_(clock) {}

kj::Maybe<capnp::Capability::Client> Netd::controlFor(uid_t peer) {
  if (peer != capdUid_) {
    audit("netd", "refuse-control", {{"uid", std::to_string(peer)}, {"reason", "not-capd"}});
    return nullptr;
  }
  uint64_t id = nextSession_++;
  return capnp::Capability::Client(gated<idl::NetControl>(kj::heap<ControlImpl>(*this, id),
                                                          kj::heap<NetdAuthorizer>(peer, capdUid_), "netd"));
}

idl::NetConnect::Client Netd::netConnectFor(uid_t peer) {
  return gated<idl::NetConnect>(kj::heap<NetConnectImpl>(*this, peer), kj::heap<NetdAuthorizer>(peer, capdUid_), "netd");
}

void Netd::sessionOpened(uint64_t id) {
  if (capdSession_ != 0) {
    // capd restarted: its new session replaces the old; the old one's grants are forgotten.
    grants_.revokeAll();
    devnet_ = false;
  }
  capdSession_ = id;
  audit("netd", "capd-connected", {{"session", std::to_string(id)}});
}

void Netd::sessionClosed(uint64_t id) {
  if (id != capdSession_) return;
  capdSession_ = 0;
  devnet_ = false;
  size_t n = grants_.revokeAll();
  audit("netd", "capd-disconnected", {{"revoked", std::to_string(n)}, {"state", "deny-all"}});
}

void Netd::announce(bool devnet, uint64_t generation) {
  bool was = devnet_;
  devnet_ = devnet;
  generation_ = generation;
  size_t revoked = devnet ? 0 : grants_.revokeAll();
  audit("netd", "devnet", {{"state", devnet ? "on" : "off"}, {"generation", std::to_string(generation)},
                           {"was", was ? "on" : "off"}, {"revoked", std::to_string(revoked)}});
}

}  // namespace capnet

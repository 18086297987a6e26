#include "netd/server/netd-server.h"

#include "common/url.h"

#include <kj/debug.h>

#include <malloc.h>

#include <algorithm>

#include "common/audit.h"
#include "idl/gate.h"
#include "idl/names.h"

namespace capnet {

std::string_view refusalName(idl::ConnectRefusal r) { return enumName(r); }


namespace {

// netd's gate decides from the facts capd announced with the policy: "principal" and every
// capability are answered from that table, asked on every call so an announcement applies to
// connections already open; "capd" is the configured capd uid. With no live control session
// there are no facts, and the gate lets NetConnect through only so that connect can refuse with
// the typed capdUnreachable (it refuses everything in that state).
class NetdAuthorizer final : public Authorizer {
 public:
  NetdAuthorizer(Netd& netd, uid_t peer, uid_t capdUid) : netd_(netd), peer_(peer), capdUid_(capdUid) {}
  bool isPrincipal() const override { return !netd_.policyKnown() || netd_.isPrincipal(peer_); }
  bool isCapd() const override { return peer_ == capdUid_; }
  bool holds(std::string_view capability) const override {
    return !netd_.policyKnown() || netd_.holds(peer_, capability);
  }
  std::string who() const override { return "uid:" + std::to_string(peer_); }

 private:
  Netd& netd_;
  uid_t peer_;
  uid_t capdUid_;
};

class ControlImpl final : public idl::NetControl::Server {
 public:
  ControlImpl(Netd& netd, uint64_t id) : netd_(netd), id_(id) { netd_.sessionOpened(id_); }
  ~ControlImpl() noexcept { netd_.sessionClosed(id_); }

  kj::Promise<void> announce(AnnounceContext context) override {
    if (!live()) return KJ_EXCEPTION(DISCONNECTED, "a newer capd session replaced this one");
    netd_.announce(policyFromWire(context.getParams()));
    return kj::READY_NOW;
  }

  kj::Promise<void> register_(RegisterContext context) override {
    if (!live()) return KJ_EXCEPTION(DISCONNECTED, "a newer capd session replaced this one");
    auto g = context.getParams().getGrant();
    auto token = g.getToken();
    auto scope = g.getScope();
    // capd is trusted, but its messages are still checked: a malformed grant is refused, not stored.
    if (token.size() != kGrantTokenBytes) return KJ_EXCEPTION(FAILED, "grant.token: must be 16 bytes");
    if (scope.getPort() == 0) return KJ_EXCEPTION(FAILED, "grant.scope.port: must not be 0");
    if (scope.getHost().size() == 0 || scope.getHost().size() > 253) {
      return KJ_EXCEPTION(FAILED, "grant.scope.host: empty or too long");
    }
    std::string scheme = scope.getScheme();
    if (scheme != "tcp" && scheme != "tls" && scheme != "http" && scheme != "https") {
      return KJ_EXCEPTION(FAILED, "grant.scope.scheme: unknown", scheme);
    }
    for (auto pin : g.getTls().getPins()) {
      if (pin.getSpkiSha256().size() != 32) return KJ_EXCEPTION(FAILED, "grant.tls.pins: must be 32 bytes");
    }
    if (g.getConnectTimeoutMs() == 0 || g.getConnectTimeoutMs() > 600000 || g.getHandshakeTimeoutMs() == 0 ||
        g.getHandshakeTimeoutMs() > 600000) {
      return KJ_EXCEPTION(FAILED, "grant timeouts: 1..600000 ms");
    }
    if (!netd_.devnetEnabled()) return KJ_EXCEPTION(FAILED, "grant registered while devnet is off");
    netd_.grants().add(g);
    return kj::READY_NOW;
  }

  kj::Promise<void> revoke(RevokeContext context) override {
    if (!live()) return KJ_EXCEPTION(DISCONNECTED, "a newer capd session replaced this one");
    auto t = context.getParams().getToken();
    bool found = netd_.grants().revoke(std::span<const uint8_t>(t.begin(), t.size()));
    if (t.size() == kGrantTokenBytes) {
      GrantToken token;
      std::copy(t.begin(), t.end(), token.begin());
      netd_.closeStreams(&token, idl::ConnectRefusal::CAP_REVOKED);
    }
    context.getResults().setFound(found);
    return kj::READY_NOW;
  }

  kj::Promise<void> revokeAll(RevokeAllContext context) override {
    if (!live()) return KJ_EXCEPTION(DISCONNECTED, "a newer capd session replaced this one");
    size_t n = netd_.grants().revokeAll();
    netd_.closeStreams(nullptr, idl::ConnectRefusal::CAP_REVOKED);
    audit("netd", "revoke-all", {{"count", std::to_string(n)}, {"by", "capd"}});
    context.getResults().setCount(static_cast<uint32_t>(n));
    return kj::READY_NOW;
  }

 private:
  bool live() const { return netd_.isLiveSession(id_); }
  Netd& netd_;
  uint64_t id_;
};

kj::Exception streamClosed(idl::ConnectRefusal reason, std::string_view detail) {
  return kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__,
                       kj::str(kStreamClosedPrefix.data(), refusalName(reason).data(), " ", detail.data()));
}
kj::Exception streamClosedByHolder() {
  return kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__,
                       kj::str(kStreamClosedPrefix.data(), "closed stream closed by its holder"));
}

}  // namespace

// One connection's state, shared (refcounted) by the ByteStream and every call queued on it, so
// no promise holds a raw reference to something a caller can destroy: a call checks, when it
// runs, that the connection is still there. Closing, revocation and the holder dropping the
// stream all go through here: the canceler first cancels every operation in flight (they are
// the only users of the connection), then the connection is released.
class StreamState final : public kj::Refcounted {
 public:
  StreamState(Netd& netd, idl::Grant::Reader grant, kj::Own<TcpConnection> conn)
      : token(grantToken(grant)), name(grantName(grant.getId())), holder(grant.getHolderUid()),
        grantExpiresAtMs(grant.getExpiresAtMs()), host(grant.getScope().getHost()), netd_(&netd), conn_(kj::mv(conn)) {
    netd_->trackStream(*this);
  }
  ~StreamState() noexcept {
    canceler_.cancel("stream released");
    release();
    if (netd_ != nullptr) netd_->untrackStream(*this);
  }

  // The connection for the next operation, or null once it is gone.
  kj::Maybe<TcpConnection&> connection() {
    KJ_IF_MAYBE(c, conn_) { return **c; }
    return nullptr;
  }
  kj::Exception closedError() const {
    KJ_IF_MAYBE(r, revokedFor_) { return streamClosed(*r, "(netd closed the stream)"); }
    return streamClosedByHolder();
  }
  bool open() const { return conn_ != nullptr; }

  template <typename T>
  kj::Promise<T> guard(kj::Promise<T> p) { return canceler_.wrap(kj::mv(p)); }

  // Netd takes the stream away: every call in flight and every later call fails with `reason`,
  // and the connection is reset.
  void revoke(idl::ConnectRefusal reason) {
    if (conn_ == nullptr) return;
    revokedFor_ = reason;
    canceler_.cancel(streamClosed(reason, "(netd closed the stream)"));
    release();
  }
  // The holder's close: cancels what still waits (reads), then releases the connection.
  void closeByHolder() {
    canceler_.cancel(streamClosedByHolder());
    release();
  }
  // Netd is going away first (shutdown, tests): forget it, drop the connection.
  void detach() {
    canceler_.cancel(streamClosed(idl::ConnectRefusal::INTERNAL, "(netd stopped)"));
    release();
    netd_ = nullptr;
  }

  const GrantToken token;
  const std::string name;   // the grant's name in audit lines.
  const uid_t holder;
  const int64_t grantExpiresAtMs;
  const std::string host;
  unsigned queuedReads = 0;
  unsigned queuedWrites = 0;
  // What a read took from the connection after its caller had cancelled it: the next read's.
  kj::Maybe<ReadResult> leftover;

 private:
  // Releases the connection (nothing in flight uses it: the canceler ran first) and the
  // holder's stream slot, once.
  void release() {
    conn_ = nullptr;
    if (!slotReleased_ && netd_ != nullptr) netd_->releaseStream(holder);
    slotReleased_ = true;
  }

  Netd* netd_;
  kj::Maybe<kj::Own<TcpConnection>> conn_;
  kj::Maybe<idl::ConnectRefusal> revokedFor_;
  bool slotReleased_ = false;
  kj::Canceler canceler_;
};

namespace {

// A read call's context while the call lasts (cleared when it ends, answered or cancelled).
struct ReadCall final : public kj::Refcounted {
  using Context = capnp::CallContext<idl::ByteStream::ReadParams, idl::ByteStream::ReadResults>;
  explicit ReadCall(Context c) : context(c) {}
  kj::Maybe<Context> context;
};

// One connection as a ByteStream. Reads and writes are each serialised (one in flight at a time per
// direction, at most kMaxQueuedCallsPerStream queued); the connection resets when the capability
// is dropped. Safe in any order: every queued call re-checks the state when it runs.
class ByteStreamImpl final : public idl::ByteStream::Server {
 public:
  explicit ByteStreamImpl(kj::Own<StreamState> state) : state_(kj::mv(state)) {}

  kj::Promise<void> read(ReadContext context) override {
    uint32_t max = std::min(context.getParams().getMaxBytes(), kMaxStreamChunk);
    if (max == 0) return KJ_EXCEPTION(FAILED, "read: maxBytes must be at least 1");
    if (!state_->open() || closing_) return closedError();
    context.allowCancellation();   // a read the holder gave up on must not pin the stream.
    if (state_->queuedReads >= kMaxQueuedCallsPerStream) {
      return KJ_EXCEPTION(OVERLOADED, "read: too many reads queued on this stream");
    }
    ++state_->queuedReads;
    // A cancelled call's context is freed by Cap'n Proto at once, while the read, queued in the
    // chain, may still run: the read reaches its context only through `call`, which the call's
    // end clears. One cancelled before its turn takes nothing; one cancelled while it waited for
    // bytes leaves what it took to the next read (one read runs at a time: at most 64 KiB).
    auto call = kj::refcounted<ReadCall>(context);
    auto op = readChain_.addBranch().then([state = kj::addRef(*state_), max, call = kj::addRef(*call)]() mutable -> kj::Promise<void> {
      KJ_IF_MAYBE(ctx, call->context) {
        if (!state->open()) return state->closedError();
        KJ_IF_MAYBE(left, state->leftover) {
          // Answered from what a cancelled read left, in this same step (no turn in between in
          // which a cancellation could strand the bytes).
          auto results = ctx->getResults();
          if (left->data.size() <= max) {
            results.setData(left->data);
            results.setEof(left->eof);
            state->leftover = nullptr;
          } else {
            results.setData(left->data.slice(0, max));
            left->data = kj::heapArray<kj::byte>(left->data.slice(max, left->data.size()));
          }
          return kj::READY_NOW;
        }
        KJ_IF_MAYBE(conn, state->connection()) {
          return state->guard(conn->read(max)).then([state = kj::addRef(*state), call = kj::mv(call)](ReadResult r) mutable {
            KJ_IF_MAYBE(c, call->context) {
              auto results = c->getResults();
              results.setData(r.data);
              results.setEof(r.eof);
            } else if (r.data.size() > 0 || r.eof) {
              // Cancelled while it waited: the bytes go to the next read. Nothing was left over
              // before (this read would have taken it), and no other read runs in between.
              state->leftover = kj::mv(r);
            }
          });
        }
        return state->closedError();
      }
      return kj::READY_NOW;   // cancelled before its turn: takes nothing
    }).attach(kj::defer([state = kj::addRef(*state_)]() mutable { --state->queuedReads; }));
    return chain(readChain_, kj::mv(op)).attach(kj::defer([call = kj::mv(call)]() mutable { call->context = nullptr; }));
  }

  kj::Promise<void> write(WriteContext context) override {
    auto data = context.getParams().getData();
    if (data.size() > kMaxStreamChunk) return KJ_EXCEPTION(FAILED, "write: at most 64 KiB per call");
    if (!state_->open() || closing_) return closedError();
    context.allowCancellation();
    if (state_->queuedWrites >= kMaxQueuedCallsPerStream) {
      return KJ_EXCEPTION(OVERLOADED, "write: too many writes queued on this stream");
    }
    ++state_->queuedWrites;
    auto copy = kj::heapArray<kj::byte>(data);
    auto op = writeChain_.addBranch().then([state = kj::addRef(*state_), copy = kj::mv(copy)]() mutable -> kj::Promise<void> {
      KJ_IF_MAYBE(conn, state->connection()) {
        auto p = conn->write(copy);
        return state->guard(p.attach(kj::mv(copy)));
      }
      return state->closedError();
    }).attach(kj::defer([state = kj::addRef(*state_)]() mutable { --state->queuedWrites; }));
    return chain(writeChain_, kj::mv(op));
  }

  kj::Promise<void> shutdownWrite(ShutdownWriteContext) override {
    if (!state_->open() || closing_) return closedError();
    auto op = writeChain_.addBranch().then([state = kj::addRef(*state_)]() mutable -> kj::Promise<void> {
      KJ_IF_MAYBE(conn, state->connection()) { return state->guard(conn->shutdownWrite()); }
      return state->closedError();
    });
    return chain(writeChain_, kj::mv(op));
  }

  kj::Promise<void> close(CloseContext) override {
    // A full close: reads pending now end (closed), writes queued before the close are sent, then
    // FIN, then the connection is released (lwIP finishes the close handshake). Every call that
    // arrives after close() fails with the typed closure. Dropping the capability without close()
    // resets the connection instead.
    if (closing_ || !state_->open()) return kj::READY_NOW;
    closing_ = true;
    auto op = writeChain_.addBranch().then([state = kj::addRef(*state_)]() mutable -> kj::Promise<void> {
      KJ_IF_MAYBE(conn, state->connection()) { return state->guard(conn->shutdownWrite()); }
      return kj::READY_NOW;
    }).then([]() {}, [](kj::Exception&&) {})
      .then([state = kj::addRef(*state_)]() mutable { state->closeByHolder(); });
    return chain(writeChain_, kj::mv(op));
  }

 private:
  kj::Promise<void> closedError() const { return state_->closedError(); }

  // Queues `op` behind the chain's previous call; a failure ends this call, not the chain.
  static kj::Promise<void> chain(kj::ForkedPromise<void>& tail, kj::Promise<void> op) {
    auto forked = op.fork();
    tail = forked.addBranch().then([]() {}, [](kj::Exception&&) {}).fork();
    return forked.addBranch();
  }

  kj::Own<StreamState> state_;
  bool closing_ = false;
  kj::ForkedPromise<void> readChain_ = kj::Promise<void>(kj::READY_NOW).fork();
  kj::ForkedPromise<void> writeChain_ = kj::Promise<void>(kj::READY_NOW).fork();
};


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

// A holder's stream slot, taken when a connect passes the gate and held by the stream once it
// exists; released if the connect fails on the way.
class StreamSlot {
 public:
  StreamSlot(Netd& netd, uid_t uid) : netd_(&netd), uid_(uid) {}
  StreamSlot(StreamSlot&& o) noexcept : netd_(o.netd_), uid_(o.uid_) { o.netd_ = nullptr; }
  StreamSlot& operator=(StreamSlot&&) = delete;
  ~StreamSlot() {
    if (netd_ != nullptr) netd_->releaseStream(uid_);
  }
  void handOver() { netd_ = nullptr; }   // the StreamState releases it from now on.

 private:
  Netd* netd_;
  uid_t uid_;
};

class NetConnectImpl final : public idl::NetConnect::Server {
 public:
  NetConnectImpl(Netd& netd, uid_t uid) : netd_(netd), uid_(uid) {}

  kj::Promise<void> connect(ConnectContext context) override {
    auto p = context.getParams();
    std::string host = p.getHost();
    uint16_t port = p.getPort();
    bool useTls = p.getUseTls();
    std::string serverName = p.getTls().getServerName();
    auto refuse = [&](idl::ConnectRefusal reason, std::string detail) {
      if (auditDenial("net", uid_, "connect deny", {{"reason", refusalName(reason)}, {"uid", std::to_string(uid_)},
                                                     {"host", host}, {"port", std::to_string(port)}}) &&
          reason == idl::ConnectRefusal::DEVNET_OFF) {
        auditRaw("net: devnet off deny");
      }
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
    if (!netd_.policyKnown()) {
      return refuse(idl::ConnectRefusal::CAPD_UNREACHABLE,
                    netd_.capdConnected() ? "capd has not announced its policy yet: no connects"
                                          : "netd has no control channel from capd: no policy, no connects");
    }
    if (!netd_.devnetEnabled()) {
      return refuse(idl::ConnectRefusal::DEVNET_OFF, "network.devnet.enabled is false");
    }
    // 2. the grant: present, known, unrevoked, unexpired, presented by its holder, in scope.
    auto token = p.getGrant();
    GrantCheck check = netd_.grants().check(std::span<const uint8_t>(token.begin(), token.size()), uid_, useTls, host, port);
    if (!check.allowed()) {
      return refuse(check.refusal, "grant check: " + std::string(enumName(check.refusal)));
    }
    // A copy: the registry may change while we connect; it lives as long as this call.
    kj::Own<capnp::MallocMessageBuilder> owned;
    KJ_IF_MAYBE(g, check.grant) {
      owned = copyGrant(*g);
    } else {
      return refuse(idl::ConnectRefusal::INTERNAL, "grant check allowed without a grant");
    }
    idl::Grant::Reader grant = owned->getRoot<idl::Grant>().asReader();
    const std::string grantHost = grant.getScope().getHost();
    // SNI and the name verified are the grant's host: policy (pins, TLS floor) is keyed by it, so
    // a caller may not name another server.
    if (!serverName.empty() && serverName != grantHost) {
      return refuse(idl::ConnectRefusal::OUT_OF_SCOPE,
                    "tls.serverName \"" + serverName + "\" differs from the grant's host \"" + grantHost + "\"");
    }
    serverName = grantHost;
    // 3. the stack.
    if (!netd_.stack().up()) {
      return refuse(idl::ConnectRefusal::NO_OS_STACK, "no OS network stack: " + netd_.stack().detail());
    }
    if (useTls && netd_.tls() == nullptr) {
      return refuse(idl::ConnectRefusal::TLS_HANDSHAKE_FAILED, "tls not available in this netd");
    }
    // 4. the holder's stream cap, counting connects still in progress.
    if (!netd_.reserveStream(uid_)) {
      return refuse(idl::ConnectRefusal::TOO_MANY_CONNECTIONS,
                    "uid " + std::to_string(uid_) + " holds " + std::to_string(netd_.limits().streamsPerPrincipal) +
                        " streams (network.limits.streamsPerPrincipal)");
    }
    StreamSlot slot(netd_, uid_);
    audit("net", "connect allow", {{"uid", std::to_string(uid_)}, {"host", host}, {"port", std::to_string(port)},
                                   {"address", formatIpv4(grant.getAddress())}, {"tls", useTls ? "yes" : "no"}});
    return netd_.stack()
        .connect(grant.getAddress(), port, grant.getConnectTimeoutMs())
        .then([this, context, grant, host, useTls, serverName, slot = kj::mv(slot)](
                  Result<kj::Own<TcpConnection>, ConnectError> r) mutable -> kj::Promise<void> {
          // `grant` reads the copy attached to this chain below.
          if (!r.ok()) {
            auto reason = toRefusal(r.code());
            auditDenial("net", uid_, "connect fail", {{"reason", refusalName(reason)}, {"uid", std::to_string(uid_)},
                                          {"host", host}, {"detail", r.message()}});
            auto refused = context.getResults().initResult().initRefused();
            refused.setReason(reason);
            refused.setDetail(r.message());
            return kj::READY_NOW;
          }
          auto conn = kj::mv(r).value();
          uint16_t localPort = conn->localPort();
          if (!useTls) {
            if (!stillAllowed(context, grant, host)) return kj::READY_NOW;
            auto c = context.getResults().initResult().initConnected();
            fillInfo(c.initInfo(), grant, localPort);
            c.setStream(newStream(grant, kj::mv(conn), slot));
            return kj::READY_NOW;
          }
          return netd_.tls()->wrap(kj::mv(conn), grant, serverName)
              .then([this, context, grant, host, localPort, slot = kj::mv(slot)](
                        std::variant<TlsSession, TlsFailure> t) mutable {
                if (auto* f = std::get_if<TlsFailure>(&t)) {
                  auditDenial("net", uid_, "tls deny", {{"reason", refusalName(f->reason)}, {"uid", std::to_string(uid_)},
                                            {"host", host}, {"detail", f->detail}});
                  auto refused = context.getResults().initResult().initRefused();
                  refused.setReason(f->reason);
                  refused.setDetail(f->detail);
                  return;
                }
                if (!stillAllowed(context, grant, host)) return;
                auto& s = std::get<TlsSession>(t);
                auto c = context.getResults().initResult().initConnected();
                auto info = c.initInfo();
                fillInfo(info, grant, localPort);
                info.setTlsVersion(s.version);
                info.setCipherSuite(s.cipherSuite);
                info.setLeafSha256(kj::arrayPtr(s.leafSha256.data(), s.leafSha256.size()));
                c.setStream(newStream(grant, kj::mv(s.connection), slot));
              });
        })
        .attach(kj::mv(owned));
  }

  kj::Promise<void> status(StatusContext context) override {
    auto r = context.getResults();
    r.setStackUp(netd_.stack().up());
    // The detail, then the link's counters and netd's heap in use in parentheses (the benchmark
    // reads them: the heap, not the RSS, is what a connection holds, since freed heap is reused
    // before the process grows). Aggregates only: nothing of any one principal's connections.
    // (With no stack, no counters: the detail alone, e.g. "no NIC".)
    std::string counters = netd_.stack().countersText();
    if (!counters.empty()) {
      const struct mallinfo2 heap = ::mallinfo2();
      // Rounded down to 64 KiB: enough for the benchmark (32 connections), too coarse to follow
      // another principal's handshakes or buffered bytes one by one.
      counters += " heap-in-use=" + std::to_string((heap.uordblks + heap.hblkhd) / 65536 * 65536);
    }
    r.setStackDetail(counters.empty() ? netd_.stack().detail() : netd_.stack().detail() + " (" + counters + ")");
    r.setDevnetEnabled(netd_.devnetEnabled());
    r.setCapdConnected(netd_.capdConnected());
    r.setPolicyKnown(netd_.policyKnown());
    return kj::READY_NOW;
  }

 private:
  // Authority can be taken away while a connect or handshake is in progress: the stream is handed
  // out only if devnet is still on and the grant still registered (else the connection is dropped
  // and the refusal says why).
  template <typename Context>
  bool stillAllowed(Context& context, idl::Grant::Reader grant, const std::string& host) {
    idl::ConnectRefusal reason = idl::ConnectRefusal::INTERNAL;
    if (!netd_.policyKnown()) {
      reason = idl::ConnectRefusal::CAPD_UNREACHABLE;
    } else if (!netd_.devnetEnabled()) {
      reason = idl::ConnectRefusal::DEVNET_OFF;
    } else if (netd_.grants().find(grantToken(grant)) == nullptr) {
      reason = idl::ConnectRefusal::CAP_REVOKED;
    } else {
      return true;
    }
    auditDenial("net", uid_, "connect deny", {{"reason", refusalName(reason)}, {"uid", std::to_string(uid_)}, {"host", host},
                                  {"detail", "authority withdrawn while connecting"}});
    auto refused = context.getResults().initResult().initRefused();
    refused.setReason(reason);
    refused.setDetail("authority withdrawn while connecting");
    return false;
  }

  idl::ByteStream::Client newStream(idl::Grant::Reader grant, kj::Own<TcpConnection> conn, StreamSlot& slot) {
    slot.handOver();
    return kj::heap<ByteStreamImpl>(kj::refcounted<StreamState>(netd_, grant, kj::mv(conn)));
  }

  static void fillInfo(idl::ConnectionInfo::Builder info, idl::Grant::Reader g, uint16_t localPort) {
    info.setRemoteAddress(formatIpv4(g.getAddress()));
    info.setRemotePort(g.getScope().getPort());
    info.setLocalPort(localPort);
    info.setTimePolicy(g.getTls().getTimePolicy() == idl::CertTimePolicy::IGNORE_VALIDITY ? "ignore-validity"
                                                                                          : "enforce");
  }

  Netd& netd_;
  uid_t uid_;
};

}  // namespace

Netd::Netd(const Clock& clock, kj::Timer& timer, TcpStack& stack, uid_t capdUid, TlsWrapper* tls)
    : clock_(clock), timer_(timer), stack_(stack), capdUid_(capdUid), tls_(tls), grants_(clock) {}

Netd::~Netd() noexcept {
  // Calls in flight may outlive netd (they belong to the event loop): cut them loose first.
  std::vector<StreamState*> all(streams_.begin(), streams_.end());
  streams_.clear();
  for (StreamState* s : all) s->detach();
}

size_t Netd::liveStreams() const {
  return static_cast<size_t>(std::count_if(streams_.begin(), streams_.end(), [](StreamState* s) { return s->open(); }));
}

kj::Maybe<capnp::Capability::Client> Netd::controlFor(uid_t peer) {
  if (peer != capdUid_) {
    auditDenial("netd", peer, "refuse-control", {{"uid", std::to_string(peer)}, {"reason", "not-capd"}});
    return nullptr;
  }
  uint64_t id = nextSession_++;
  return capnp::Capability::Client(gated<idl::NetControl>(kj::heap<ControlImpl>(*this, id),
                                                          kj::heap<NetdAuthorizer>(*this, peer, capdUid_), "netd"));
}

idl::NetConnect::Client Netd::netConnectFor(uid_t peer) {
  return gated<idl::NetConnect>(kj::heap<NetConnectImpl>(*this, peer), kj::heap<NetdAuthorizer>(*this, peer, capdUid_),
                                "netd");
}

bool Netd::holds(uid_t uid, std::string_view capability) const {
  auto it = principals_.find(uid);
  return it != principals_.end() && it->second.count(capability) != 0;
}

void Netd::sessionOpened(uint64_t id) {
  if (capdSession_ != 0) {
    // capd restarted: its new session replaces the old; the old one's grants are forgotten.
    grants_.revokeAll();
    closeStreams(nullptr, idl::ConnectRefusal::CAPD_UNREACHABLE);
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
  size_t closed = closeStreams(nullptr, idl::ConnectRefusal::CAPD_UNREACHABLE);
  audit("netd", "capd-disconnected", {{"revoked", std::to_string(n)}, {"state", "deny-all"},
                                      {"streams-closed", std::to_string(closed)}});
}

NetdPolicy policyFromWire(idl::NetControl::AnnounceParams::Reader a) {
  NetdPolicy p;
  p.devnetEnabled = a.getDevnetEnabled();
  p.generation = a.getGeneration();
  for (auto f : a.getPrincipals()) {
    auto& caps = p.principals[f.getUid()];
    for (auto c : f.getCapabilities()) caps.insert(c.cStr());
  }
  if (a.hasLimits()) {
    // Zero means "netd's default" where zero is not a valid limit; capd's validation keeps every
    // value in range. maxStreamMs 0 is meaningful: closed as soon as the grant expires.
    auto l = a.getLimits();
    NetdLimits d;
    p.limits.streamsPerPrincipal = l.getStreamsPerPrincipal() ? l.getStreamsPerPrincipal() : d.streamsPerPrincipal;
    p.limits.connectionsPerUid = l.getConnectionsPerUid() ? l.getConnectionsPerUid() : d.connectionsPerUid;
    p.limits.firstCallDeadlineMs = l.getFirstCallDeadlineMs() ? l.getFirstCallDeadlineMs() : d.firstCallDeadlineMs;
    p.limits.maxStreamMs = l.getMaxStreamMs();
  }
  return p;
}

void Netd::announce(NetdPolicy policy) {
  bool was = devnet_;
  devnet_ = policy.devnetEnabled;
  generation_ = policy.generation;
  announcedSession_ = capdSession_;
  principals_ = std::move(policy.principals);
  limits_ = policy.limits;
  if (limitsObserver_) limitsObserver_(limits_);
  size_t revoked = devnet_ ? 0 : grants_.revokeAll();
  size_t closed = devnet_ ? 0 : closeStreams(nullptr, idl::ConnectRefusal::DEVNET_OFF);
  audit("netd", "devnet", {{"state", devnet_ ? "on" : "off"}, {"generation", std::to_string(generation_)},
                           {"was", was ? "on" : "off"}, {"revoked", std::to_string(revoked)},
                           {"streams-closed", std::to_string(closed)}});
}

size_t Netd::streamsOf(uid_t uid) const {
  auto it = streamsPerUid_.find(uid);
  return it == streamsPerUid_.end() ? 0 : it->second;
}

bool Netd::reserveStream(uid_t uid) {
  size_t& n = streamsPerUid_[uid];
  if (n >= limits_.streamsPerPrincipal) {
    if (n == 0) streamsPerUid_.erase(uid);
    return false;
  }
  ++n;
  return true;
}

void Netd::releaseStream(uid_t uid) {
  auto it = streamsPerUid_.find(uid);
  if (it != streamsPerUid_.end() && --it->second == 0) streamsPerUid_.erase(it);
}

void Netd::trackStream(StreamState& s) { streams_.insert(&s); }
void Netd::untrackStream(StreamState& s) { streams_.erase(&s); }

size_t Netd::closeStreams(const GrantToken* token, idl::ConnectRefusal reason) {
  std::vector<StreamState*> victims;
  for (StreamState* s : streams_) {
    if (s->open() && (token == nullptr || s->token == *token)) victims.push_back(s);
  }
  for (StreamState* s : victims) {
    audit("net", "stream closed", {{"reason", refusalName(reason)}, {"grant", s->name},
                                   {"uid", std::to_string(s->holder)}, {"host", s->host}});
    s->revoke(reason);
  }
  return victims.size();
}

void Netd::sweep() {
  grants_.sweep();
  const int64_t now = clock_.nowMs();
  std::vector<StreamState*> victims;
  for (StreamState* s : streams_) {
    if (s->open() && now >= s->grantExpiresAtMs + static_cast<int64_t>(limits_.maxStreamMs)) victims.push_back(s);
  }
  for (StreamState* s : victims) {
    audit("net", "stream closed", {{"reason", refusalName(idl::ConnectRefusal::CAP_EXPIRED)},
                                   {"grant", s->name}, {"uid", std::to_string(s->holder)},
                                   {"host", s->host}, {"detail", "grants.maxStreamMs"}});
    s->revoke(idl::ConnectRefusal::CAP_EXPIRED);
  }
}

kj::Promise<void> Netd::housekeeping(kj::Duration interval) {
  return timer_.afterDelay(interval).then([this, interval]() {
    sweep();
    return housekeeping(interval);
  });
}

}  // namespace capnet

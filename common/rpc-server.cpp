#include "common/rpc-server.h"

#include <capnp/rpc-twoparty.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize-async.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/audit.h"

namespace capnet {

namespace {
class LogErrors final : public kj::TaskSet::ErrorHandler {
 public:
  explicit LogErrors(std::string component) : component_(std::move(component)) {}
  void taskFailed(kj::Exception&& e) override {
    // A connection's failure ends that connection only.
    if (e.getType() == kj::Exception::Type::DISCONNECTED) return;
    audit(component_, "connection-error", {{"detail", e.getDescription().cStr()}});
  }

 private:
  std::string component_;
};

// How often a connection's watchdog looks at its queue and its first-call deadline.
constexpr kj::Duration kWatchInterval = 100 * kj::MILLISECONDS;
}  // namespace

// The connection's message stream, seen by the RPC system: counts the calls the peer completed
// (a call counts once its whole message has arrived).
// It also refuses to read the next call while the peer leaves too many answers unread: checked
// before every read, so the queue can outgrow the limit by one message's answers at most.
class UnixRpcServer::GuardedStream final : public capnp::MessageStream {
 public:
  GuardedStream(kj::AsyncIoStream& stream, size_t maxQueuedReplyBytes, size_t maxOpenQuestions)
      : inner_(stream), maxQueued_(maxQueuedReplyBytes), maxOpen_(maxOpenQuestions) {}

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> tryReadMessage(kj::ArrayPtr<kj::AutoCloseFd> fdSpace,
                                                                    capnp::ReaderOptions options,
                                                                    kj::ArrayPtr<capnp::word> scratch) override {
    KJ_IF_MAYBE(n, network) {
      if ((*n)->getCurrentQueueSize() > maxQueued_) {
        overQueue = true;
        return KJ_EXCEPTION(DISCONNECTED, "peer does not read its answers");
      }
    }
    if (openQuestions > maxOpen_) {
      tooManyOpen = true;
      return KJ_EXCEPTION(DISCONNECTED, "peer does not finish its questions");
    }
    return inner_.tryReadMessage(fdSpace, options, scratch)
        .then([this](kj::Maybe<capnp::MessageReaderAndFds>&& m) {
          KJ_IF_MAYBE(msg, m) {
            // which() reads one tag; a malformed root is the RPC system's to refuse.
            KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                          switch (msg->reader->getRoot<capnp::rpc::Message>().which()) {
                            case capnp::rpc::Message::CALL:
                              ++calls;
                              ++openQuestions;
                              break;
                            case capnp::rpc::Message::BOOTSTRAP:
                              ++openQuestions;
                              break;
                            case capnp::rpc::Message::FINISH:
                              if (openQuestions > 0) --openQuestions;
                              break;
                            default:
                              break;
                          }
                        })) {
              (void)e;
            }
          }
          return kj::mv(m);
        });
  }
  kj::Promise<void> writeMessage(kj::ArrayPtr<const int> fds,
                                 kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) override {
    return inner_.writeMessage(fds, segments);
  }
  kj::Promise<void> writeMessages(kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) override {
    return inner_.writeMessages(messages);
  }
  kj::Maybe<int> getSendBufferSize() override { return inner_.getSendBufferSize(); }
  kj::Promise<void> end() override { return inner_.end(); }

  uint64_t calls = 0;
  uint64_t openQuestions = 0;   // calls and bootstraps not yet finished by the peer.
  bool overQueue = false;
  bool tooManyOpen = false;
  kj::Maybe<capnp::TwoPartyVatNetwork*> network;

 private:
  capnp::AsyncIoMessageStream inner_;
  size_t maxQueued_;
  size_t maxOpen_;
};

struct UnixRpcServer::Connection {
  Connection(kj::Own<kj::AsyncIoStream> s, PeerCredentials peer, const RpcLimits& limits,
             capnp::Capability::Client bootstrap)
      : stream(kj::mv(s)),
        guarded(*stream, limits.maxQueuedReplyBytes, limits.maxOpenQuestions),
        network(guarded, capnp::rpc::twoparty::Side::SERVER, readerOptions(limits)),
        rpc(capnp::makeRpcServer(network, kj::mv(bootstrap))),
        peer(peer) {
    guarded.network = &network;
    rpc.setFlowLimit(limits.flowLimitWords);
  }
  static capnp::ReaderOptions readerOptions(const RpcLimits& limits) {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = limits.traversalLimitInWords;
    options.nestingLimit = limits.nestingLimit;
    return options;
  }
  kj::Own<kj::AsyncIoStream> stream;
  GuardedStream guarded;
  capnp::TwoPartyVatNetwork network;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
  PeerCredentials peer;
};

UnixRpcServer::UnixRpcServer(kj::AsyncIoProvider& io, std::string component, RpcLimits limits, Factory factory)
    : UnixRpcServer(io, std::move(component), limits, Async{},
                    [f = kj::mv(factory)](const PeerCredentials& peer) mutable {
                      return kj::Promise<kj::Maybe<capnp::Capability::Client>>(f(peer));
                    }) {}

UnixRpcServer::UnixRpcServer(kj::AsyncIoProvider& io, std::string component, RpcLimits limits, Async,
                             AsyncFactory factory)
    : io_(io), component_(std::move(component)), limits_(limits), factory_(kj::mv(factory)) {
  errors_ = kj::heap<LogErrors>(component_);
  tasks_ = kj::heap<kj::TaskSet>(*errors_);
}

UnixRpcServer::~UnixRpcServer() {
  // Connections release their slots as they go; nothing may touch perUid_ after this.
  tasks_ = nullptr;
}

size_t UnixRpcServer::connectionCount() const { return connections_; }

size_t UnixRpcServer::connectionCount(uid_t uid) const {
  auto it = perUid_.find(uid);
  return it == perUid_.end() ? 0 : it->second;
}

void UnixRpcServer::release(uid_t uid) {
  --connections_;
  auto it = perUid_.find(uid);
  if (it != perUid_.end() && --it->second == 0) perUid_.erase(it);
}

kj::Promise<void> UnixRpcServer::watch(Connection& conn, RpcLimits limits, kj::TimePoint start) {
  // Resolves (ending the connection) when the peer breaks a limit; otherwise never.
  return io_.getTimer().afterDelay(kWatchInterval).then([this, &conn, limits, start]() -> kj::Promise<void> {
    const std::string uid = std::to_string(conn.peer.uid);
    if (conn.network.getCurrentQueueSize() > limits.maxQueuedReplyBytes) {
      auditDenial(component_, conn.peer.uid, "close-connection",
            {{"reason", "peer-not-reading"}, {"uid", uid},
             {"queued-bytes", std::to_string(conn.network.getCurrentQueueSize())}});
      return kj::READY_NOW;
    }
    if (conn.guarded.calls == 0 && io_.getTimer().now() - start >= limits.firstCallDeadlineMs * kj::MILLISECONDS) {
      auditDenial(component_, conn.peer.uid, "close-connection", {{"reason", "no-call-before-deadline"}, {"uid", uid}});
      return kj::READY_NOW;
    }
    return watch(conn, limits, start);
  });
}

void UnixRpcServer::serve(kj::Own<kj::AsyncIoStream> stream) {
  std::optional<PeerCredentials> cred;
  KJ_IF_MAYBE(fd, stream->getFd()) { cred = peerCredentials(*fd); }
  if (!cred) {
    audit(component_, "refuse-connection", {{"reason", "no-peer-credentials"}});
    return;
  }
  const PeerCredentials peer = *cred;
  const RpcLimits limits = limits_;
  if (connections_ >= limits.maxConnections || connectionCount(peer.uid) >= limits.maxConnectionsPerUid) {
    auditDenial(component_, peer.uid, "refuse-connection",
          {{"reason", "too-many-connections"}, {"uid", std::to_string(peer.uid)},
           {"limit", connections_ >= limits.maxConnections ? "all" : "per-uid"}});
    return;
  }
  // The slot is taken before the factory answers, so a flood of connects cannot outrun the cap.
  ++connections_;
  ++perUid_[peer.uid];
  auto slot = kj::defer([this, uid = peer.uid]() { release(uid); });
  auto served =
      factory_(peer).then([this, peer, limits, stream = kj::mv(stream)](
                              kj::Maybe<capnp::Capability::Client> bootstrap) mutable -> kj::Promise<void> {
        KJ_IF_MAYBE(b, bootstrap) {
          auto conn = kj::heap<Connection>(kj::mv(stream), peer, limits, kj::mv(*b));
          auto& ref = *conn;
          auto ended = ref.network.onDisconnect().then([this, &ref]() {
            if (ref.guarded.overQueue) {
              auditDenial(component_, ref.peer.uid, "close-connection",
                    {{"reason", "peer-not-reading"}, {"uid", std::to_string(ref.peer.uid)},
                     {"queued-bytes", std::to_string(ref.network.getCurrentQueueSize())}});
            } else if (ref.guarded.tooManyOpen) {
              auditDenial(component_, ref.peer.uid, "close-connection",
                    {{"reason", "too-many-open-questions"}, {"uid", std::to_string(ref.peer.uid)}});
            }
          });
          return ended.exclusiveJoin(watch(ref, limits, io_.getTimer().now())).attach(kj::mv(conn));
        }
        // The factory refused (and audited why); dropping the stream closes it.
        return kj::READY_NOW;
      });
  tasks_->add(served.attach(kj::mv(slot)));
}

kj::Promise<void> UnixRpcServer::acceptLoop(kj::ConnectionReceiver& listener) {
  return listener.accept().then(
      [this, &listener](kj::Own<kj::AsyncIoStream> stream) {
        serve(kj::mv(stream));
        return acceptLoop(listener);
      },
      [this, &listener](kj::Exception&& e) -> kj::Promise<void> {
        audit(component_, "accept-error", {{"detail", e.getDescription().cStr()}});
        return acceptLoop(listener);
      });
}

kj::Promise<void> UnixRpcServer::bind(const std::string& path, unsigned mode) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return KJ_EXCEPTION(FAILED, "cannot replace socket", path, strerror(errno));
  }
  return io_.getNetwork().parseAddress(kj::str("unix:", path.c_str()))
      .then([this, path, mode](kj::Own<kj::NetworkAddress> addr) -> kj::Promise<void> {
        listener_ = addr->listen();
        if (::chmod(path.c_str(), mode) != 0) {
          return KJ_EXCEPTION(FAILED, "chmod socket", path, strerror(errno));
        }
        return kj::READY_NOW;
      });
}

kj::Promise<void> UnixRpcServer::run() {
  KJ_REQUIRE(listener_.get() != nullptr, "UnixRpcServer::run() before bind()");
  return acceptLoop(*listener_);
}

}  // namespace capnet

#include "common/rpc-server.h"

#include <capnp/rpc-twoparty.h>
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
}  // namespace

struct UnixRpcServer::Connection {
  Connection(kj::Own<kj::AsyncIoStream> s, capnp::ReaderOptions options, capnp::Capability::Client bootstrap)
      : stream(kj::mv(s)),
        network(*stream, capnp::rpc::twoparty::Side::SERVER, options),
        rpc(capnp::makeRpcServer(network, kj::mv(bootstrap))) {}
  kj::Own<kj::AsyncIoStream> stream;
  capnp::TwoPartyVatNetwork network;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
};

UnixRpcServer::UnixRpcServer(kj::AsyncIoProvider& io, std::string component, RpcLimits limits,
                             Factory factory)
    : io_(io), component_(std::move(component)), limits_(limits), factory_(kj::mv(factory)) {
  errors_ = kj::heap<LogErrors>(component_);
  tasks_ = kj::heap<kj::TaskSet>(*errors_);
}

UnixRpcServer::~UnixRpcServer() {}

size_t UnixRpcServer::connectionCount() const { return connections_; }

void UnixRpcServer::serve(kj::Own<kj::AsyncIoStream> stream) {
  std::optional<PeerCredentials> cred;
  KJ_IF_MAYBE(fd, stream->getFd()) { cred = peerCredentials(*fd); }
  if (!cred) {
    audit(component_, "refuse-connection", {{"reason", "no-peer-credentials"}});
    return;
  }
  if (connections_ >= limits_.maxConnections) {
    audit(component_, "refuse-connection", {{"reason", "too-many-connections"}, {"uid", std::to_string(cred->uid)}});
    return;
  }
  kj::Maybe<capnp::Capability::Client> bootstrap = factory_(*cred);
  KJ_IF_MAYBE(b, bootstrap) {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = limits_.traversalLimitInWords;
    options.nestingLimit = limits_.nestingLimit;
    auto conn = kj::heap<Connection>(kj::mv(stream), options, kj::mv(*b));
    ++connections_;
    auto done = conn->network.onDisconnect();
    tasks_->add(done.attach(kj::mv(conn), kj::defer([this]() { --connections_; })));
  } else {
    // The factory refused (and audited why); dropping the stream closes it.
  }
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

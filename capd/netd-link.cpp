#include "capd/netd-link.h"

#include <capnp/rpc-twoparty.h>

#include "common/audit.h"

namespace capnet {

struct UnixNetdLink::Session {
  explicit Session(kj::Own<kj::AsyncIoStream> s)
      : stream(kj::mv(s)), client(*stream), control(client.bootstrap().castAs<idl::NetControl>()) {}
  kj::Own<kj::AsyncIoStream> stream;
  capnp::TwoPartyClient client;
  idl::NetControl::Client control;
};

UnixNetdLink::UnixNetdLink(kj::AsyncIoProvider& io, kj::Timer& timer, std::string path,
                           kj::Function<kj::Promise<void>()> onConnected)
    : io_(io), timer_(timer), path_(std::move(path)), onConnected_(kj::mv(onConnected)) {}

UnixNetdLink::~UnixNetdLink() noexcept {}

bool UnixNetdLink::connected() const { return session_ != nullptr; }

kj::Promise<void> UnixNetdLink::connectOnce() {
  return io_.getNetwork()
      .parseAddress(kj::str("unix:", path_.c_str()))
      .then([](kj::Own<kj::NetworkAddress> addr) { return addr->connect(); })
      .then([this](kj::Own<kj::AsyncIoStream> stream) -> kj::Promise<void> {
        auto session = kj::heap<Session>(kj::mv(stream));
        auto disconnected = session->client.onDisconnect();
        session_ = kj::mv(session);
        backoffMs_ = 50;
        everConnected_ = true;
        audit("capd", "netd-connected", {{"socket", path_}});
        return onConnected_()
            .then([d = kj::mv(disconnected)]() mutable { return kj::mv(d); })
            .then([]() {}, [](kj::Exception&&) {});
      });
}

kj::Promise<void> UnixNetdLink::run() {
  return connectOnce()
      .then([]() {}, [this](kj::Exception&& e) {
        if (backoffMs_ == 50 && !everConnected_) {
          audit("capd", "netd-unreachable", {{"socket", path_}, {"detail", e.getDescription().cStr()}});
        }
      })
      .then([this]() {
        if (session_ != nullptr) {
          session_ = nullptr;
          audit("capd", "netd-disconnected", {{"socket", path_}});
        }
        unsigned wait = backoffMs_;
        backoffMs_ = std::min(backoffMs_ * 2, 2000u);
        return timer_.afterDelay(wait * kj::MILLISECONDS);
      })
      .then([this]() { return run(); });
}

kj::Promise<bool> UnixNetdLink::registerGrant(idl::Grant::Reader grant) {
  KJ_IF_MAYBE(s, session_) {
    auto req = (*s)->control.registerRequest();
    req.setGrant(grant);
    return req.send().then([](auto&&) { return true; },
                           [](kj::Exception&& e) {
                             audit("capd", "netd-register-failed", {{"detail", e.getDescription().cStr()}});
                             return false;
                           });
  }
  return false;
}

kj::Promise<void> UnixNetdLink::revoke(const GrantToken& token) {
  KJ_IF_MAYBE(s, session_) {
    auto req = (*s)->control.revokeRequest();
    req.setToken(kj::arrayPtr(token.data(), token.size()));
    return req.send().then([](auto&&) {}, [](kj::Exception&&) {});
  }
  return kj::READY_NOW;   // netd without capd forgets every grant by itself.
}

kj::Promise<void> UnixNetdLink::revokeAll() {
  KJ_IF_MAYBE(s, session_) {
    return (*s)->control.revokeAllRequest().send().then([](auto&&) {}, [](kj::Exception&&) {});
  }
  return kj::READY_NOW;
}

void toWire(const Announcement& a, idl::NetControl::AnnounceParams::Builder req) {
  req.setDevnetEnabled(a.devnetEnabled);
  req.setGeneration(a.generation);
  auto ps = req.initPrincipals(static_cast<unsigned>(a.principals.size()));
  for (unsigned i = 0; i < ps.size(); ++i) {
    ps[i].setUid(a.principals[i].uid);
    auto caps = ps[i].initCapabilities(static_cast<unsigned>(a.principals[i].capabilities.size()));
    for (unsigned j = 0; j < caps.size(); ++j) caps.set(j, a.principals[i].capabilities[j]);
  }
  auto l = req.initLimits();
  l.setStreamsPerPrincipal(a.limits.streamsPerPrincipal);
  l.setConnectionsPerUid(a.limits.connectionsPerUid);
  l.setFirstCallDeadlineMs(a.limits.firstCallDeadlineMs);
  l.setMaxStreamMs(a.limits.maxStreamMs);
}

kj::Promise<void> UnixNetdLink::announce(const Announcement& a) {
  KJ_IF_MAYBE(s, session_) {
    auto req = (*s)->control.announceRequest();
    toWire(a, req);
    return req.send().then([](auto&&) {}, [](kj::Exception&& e) {
      audit("capd", "netd-announce-failed", {{"detail", e.getDescription().cStr()}});
    });
  }
  return kj::READY_NOW;
}

}  // namespace capnet

// capd's side of the privileged control channel to netd (idl/cap.capnp NetControl).
// capd is the client: it connects to netd's control socket, which accepts only capd's uid.
#pragma once

#include <kj/async-io.h>

#include <cstdint>
#include <string>

#include "capd/policy.h"
#include "idl/grant.h"
#include "idl/cap.capnp.h"

namespace capnet {

class NetdLink {
 public:
  virtual ~NetdLink() = default;
  virtual bool connected() const = 0;
  // Resolves true once netd holds the grant; false when netd is unreachable (never rejects).
  virtual kj::Promise<bool> registerGrant(idl::Grant::Reader grant) = 0;
  virtual kj::Promise<void> revoke(const GrantToken& token) = 0;
  virtual kj::Promise<void> revokeAll() = 0;
  virtual kj::Promise<void> announce(const Announcement& a) = 0;
};

void toWire(const Announcement& a, idl::NetControl::AnnounceParams::Builder out);

// The real link over a Unix socket, reconnecting with bounded backoff. On every (re)connect it
// calls `onConnected` so capd can announce the policy and re-register live grants.
class UnixNetdLink final : public NetdLink {
 public:
  UnixNetdLink(kj::AsyncIoProvider& io, kj::Timer& timer, std::string path,
               kj::Function<kj::Promise<void>()> onConnected);
  ~UnixNetdLink() noexcept override;

  kj::Promise<void> run();   // connects, and reconnects forever; never rejects.

  bool connected() const override;
  kj::Promise<bool> registerGrant(idl::Grant::Reader grant) override;
  kj::Promise<void> revoke(const GrantToken& token) override;
  kj::Promise<void> revokeAll() override;
  kj::Promise<void> announce(const Announcement& a) override;

 private:
  struct Session;
  kj::Promise<void> connectOnce();

  kj::AsyncIoProvider& io_;
  kj::Timer& timer_;
  std::string path_;
  kj::Function<kj::Promise<void>()> onConnected_;
  kj::Maybe<kj::Own<Session>> session_;
  unsigned backoffMs_ = 50;
  bool everConnected_ = false;
};

}  // namespace capnet

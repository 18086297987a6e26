// Test support for netd's tests (and tests that run netd's server): a grant record as plain
// fields that builds the idl::Grant capd would register, an announcement, and capd's side of the
// control channel speaking idl::NetControl directly (so netd's tests do not need capd).
#pragma once

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "idl/cap.capnp.h"
#include "idl/grant.h"
#include "netd/server/netd-server.h"

namespace capnet::testing {

// A grant as the fields a test sets; message() is the idl::Grant capd would register.
struct TestGrant {
  GrantToken token{};
  uint64_t id = 0;
  uid_t subjectUid = 0;
  uid_t holderUid = 0;
  std::string scheme = "tcp";
  std::string host = "devnet.test";
  uint16_t port = 7;
  uint32_t address = 0x0a000202u;
  int64_t expiresAtMs = 60000;
  bool tls12 = false;
  bool ignoreValidity = false;
  std::vector<std::array<uint8_t, 32>> pins;
  int64_t pinsExpireAtMs = 0;
  uint32_t connectTimeoutMs = 5000;
  uint32_t handshakeTimeoutMs = 5000;

  kj::Own<capnp::MallocMessageBuilder> message() const {
    auto m = kj::heap<capnp::MallocMessageBuilder>(256);
    auto g = m->initRoot<idl::Grant>();
    g.setToken(kj::arrayPtr(token.data(), token.size()));
    g.setId(id);
    g.setSubjectUid(subjectUid);
    g.setHolderUid(holderUid);
    auto s = g.initScope();
    s.setScheme(scheme);
    s.setHost(host);
    s.setPort(port);
    g.setAddress(address);
    g.setExpiresAtMs(expiresAtMs);
    auto t = g.initTls();
    t.setMinVersion(tls12 ? idl::TlsVersion::TLS12 : idl::TlsVersion::TLS13);
    t.setTimePolicy(ignoreValidity ? idl::CertTimePolicy::IGNORE_VALIDITY : idl::CertTimePolicy::ENFORCE);
    auto p = t.initPins(static_cast<unsigned>(pins.size()));
    for (unsigned i = 0; i < p.size(); ++i) p[i].setSpkiSha256(kj::arrayPtr(pins[i].data(), pins[i].size()));
    t.setPinsExpireAtMs(pinsExpireAtMs);
    g.setConnectTimeoutMs(connectTimeoutMs);
    g.setHandshakeTimeoutMs(handshakeTimeoutMs);
    return m;
  }
  kj::ArrayPtr<const kj::byte> tokenBytes() const { return kj::arrayPtr(token.data(), token.size()); }
};

inline TestGrant testGrant(uint8_t seed, uid_t holder, std::string scheme = "tcp", int64_t expires = 60000) {
  TestGrant g;
  g.token.fill(seed);
  g.subjectUid = g.holderUid = holder;
  g.scheme = std::move(scheme);
  g.expiresAtMs = expires;
  return g;
}

// Registers a grant straight into a Netd (no control channel).
inline void addGrant(Netd& netd, const TestGrant& g) { netd.grants().add(grantOf(*g.message())); }

// netd as a live capd session leaves it for fetchd's tests: devnet on, `principal` holding
// net.tcp.connect, and the grant for http://devnet.test:80 (10.0.2.100) with a token of
// `tokenByte` registered. Returns capd's control session, which the caller keeps alive.
inline kj::Maybe<capnp::Capability::Client> grantHttpDevnet(Netd& netd, uid_t capdUid, uid_t principal,
                                                            uint8_t tokenByte) {
  auto control = netd.controlFor(capdUid);
  NetdPolicy policy;
  policy.devnetEnabled = true;
  policy.generation = 1;
  policy.principals[principal] = {"net.tcp.connect"};
  netd.announce(policy);
  auto g = testGrant(tokenByte, principal, "http", 1000000);
  g.port = 80;
  g.address = 0x0a000264;
  addGrant(netd, g);
  return control;
}

// An announcement: devnet, and `principals` (this process's uid by default) holding net.tcp.connect.
struct TestAnnouncement {
  bool devnetEnabled = false;
  uint64_t generation = 0;
  std::vector<std::pair<uid_t, std::vector<std::string>>> principals;
  NetdLimits limits;
};

inline TestAnnouncement testAnnouncement(bool devnet, uint64_t generation) {
  TestAnnouncement a;
  a.devnetEnabled = devnet;
  a.generation = generation;
  a.principals.push_back({::getuid(), {"net.tcp.connect"}});
  return a;
}

inline NetdPolicy asPolicy(const TestAnnouncement& a) {
  NetdPolicy p;
  p.devnetEnabled = a.devnetEnabled;
  p.generation = a.generation;
  for (const auto& [uid, caps] : a.principals) p.principals[uid].insert(caps.begin(), caps.end());
  p.limits = a.limits;
  return p;
}

// capd's side of the control channel, connected once to netd's control socket.
class ControlLink {
 public:
  ControlLink(kj::AsyncIoProvider& io, const std::string& path, kj::WaitScope& ws)
      : stream_(io.getNetwork().parseAddress(kj::str("unix:", path.c_str())).wait(ws)->connect().wait(ws)),
        client_(*stream_),
        control_(client_.bootstrap().castAs<idl::NetControl>()) {}

  kj::Promise<void> announce(const TestAnnouncement& a) {
    auto req = control_.announceRequest();
    req.setDevnetEnabled(a.devnetEnabled);
    req.setGeneration(a.generation);
    auto ps = req.initPrincipals(static_cast<unsigned>(a.principals.size()));
    for (unsigned i = 0; i < ps.size(); ++i) {
      ps[i].setUid(a.principals[i].first);
      auto caps = ps[i].initCapabilities(static_cast<unsigned>(a.principals[i].second.size()));
      for (unsigned j = 0; j < caps.size(); ++j) caps.set(j, a.principals[i].second[j]);
    }
    auto l = req.initLimits();
    l.setStreamsPerPrincipal(a.limits.streamsPerPrincipal);
    l.setConnectionsPerUid(a.limits.connectionsPerUid);
    l.setFirstCallDeadlineMs(a.limits.firstCallDeadlineMs);
    l.setMaxStreamMs(a.limits.maxStreamMs);
    return req.send().ignoreResult();
  }
  // Resolves true once netd holds the grant, false when it refused it.
  kj::Promise<bool> registerGrant(const TestGrant& g) {
    auto req = control_.registerRequest();
    req.setGrant(grantOf(*g.message()));
    return req.send().then([](auto&&) { return true; }, [](kj::Exception&&) { return false; });
  }
  kj::Promise<void> revoke(const GrantToken& token) {
    auto req = control_.revokeRequest();
    req.setToken(kj::arrayPtr(token.data(), token.size()));
    return req.send().ignoreResult();
  }

 private:
  kj::Own<kj::AsyncIoStream> stream_;
  capnp::TwoPartyClient client_;
  idl::NetControl::Client control_;
};

}  // namespace capnet::testing

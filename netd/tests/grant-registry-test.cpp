#include <doctest/doctest.h>

#include "netd/grant-registry.h"
#include "tests/support/netd-control.h"

using namespace capnet;

namespace {

// The registry keeps its own copy: the message may go away after add().
idl::Grant::Reader grant(uint8_t seed, uid_t holder, std::string scheme = "tcp") {
  static std::vector<kj::Own<capnp::MallocMessageBuilder>> keep;
  auto g = capnet::testing::testGrant(seed, holder, std::move(scheme), 1000);
  keep.push_back(g.message());
  return grantOf(*keep.back());
}

}  // namespace

TEST_CASE("registry check order: unknown -> revoked -> expired -> holder uid -> scope") {
  FakeClock clock(0);
  GrantRegistry r(clock);
  r.add(grant(1, 100));
  GrantToken t;
  t.fill(1);
  GrantToken forged;
  forged.fill(9);

  CHECK(r.check(t, 100, false, "devnet.test", 7).allowed());
  CHECK(KJ_ASSERT_NONNULL(r.check(t, 100, false, "devnet.test", 7).grant).getAddress() == 0x0a000202u);
  CHECK(r.check(forged, 100, false, "devnet.test", 7).refusal == idl::ConnectRefusal::NO_CAP);
  CHECK(r.check(std::span<const uint8_t>(), 100, false, "devnet.test", 7).refusal == idl::ConnectRefusal::NO_CAP);
  CHECK(r.check(std::span<const uint8_t>(t.data(), 8), 100, false, "devnet.test", 7).refusal == idl::ConnectRefusal::NO_CAP);
  CHECK(r.check(t, 101, false, "devnet.test", 7).refusal == idl::ConnectRefusal::WRONG_UID);
  CHECK(r.check(t, 100, false, "other.test", 7).refusal == idl::ConnectRefusal::OUT_OF_SCOPE);
  CHECK(r.check(t, 100, false, "devnet.test", 8).refusal == idl::ConnectRefusal::OUT_OF_SCOPE);
  CHECK(r.check(t, 100, true, "devnet.test", 7).refusal == idl::ConnectRefusal::OUT_OF_SCOPE);
  clock.set(1000);
  CHECK(r.check(t, 101, false, "devnet.test", 7).refusal == idl::ConnectRefusal::CAP_EXPIRED);
  clock.set(999);
  CHECK(r.revoke(t));
  CHECK(r.check(t, 100, false, "devnet.test", 7).refusal == idl::ConnectRefusal::CAP_REVOKED);
  CHECK_FALSE(r.revoke(t));
}

TEST_CASE("tls and https grants match TLS connects while tcp and http grants match plain ones") {
  FakeClock clock(0);
  GrantRegistry r(clock);
  r.add(grant(2, 100, "https"));
  r.add(grant(3, 100, "http"));
  GrantToken https, http;
  https.fill(2);
  http.fill(3);
  CHECK(r.check(https, 100, true, "devnet.test", 7).allowed());
  CHECK(r.check(https, 100, false, "devnet.test", 7).refusal == idl::ConnectRefusal::OUT_OF_SCOPE);
  CHECK(r.check(http, 100, false, "devnet.test", 7).allowed());
}

TEST_CASE("revokeAll revokes every grant and sweep drops expired ones") {
  FakeClock clock(0);
  GrantRegistry r(clock);
  r.add(grant(1, 100));
  r.add(grant(2, 100));
  CHECK(r.revokeAll() == 2);
  CHECK(r.size() == 0);
  GrantToken t;
  t.fill(2);
  CHECK(r.check(t, 100, false, "devnet.test", 7).refusal == idl::ConnectRefusal::CAP_REVOKED);
  r.add(grant(3, 100));
  clock.set(5000);
  CHECK(r.sweep() == 1);
  CHECK(r.size() == 0);
}

TEST_CASE("a default GrantCheck denies") {
  GrantCheck c;
  CHECK_FALSE(c.allowed());
  CHECK(c.refusal == idl::ConnectRefusal::NO_CAP);
}

TEST_CASE("the registry keeps its own copy of each grant, and sweeping costs only what expired") {
  FakeClock clock(0);
  GrantRegistry r(clock);
  {
    auto g = capnet::testing::testGrant(7, 100, "tcp", 2000);
    auto message = g.message();
    r.add(grantOf(*message));
  }   // the message capd sent is gone; the registry's copy is not.
  GrantToken t;
  t.fill(7);
  auto found = r.find(t);
  REQUIRE(found != nullptr);
  CHECK(KJ_ASSERT_NONNULL(found).getScope().getHost() == "devnet.test");
  // Re-registered with a later expiry: the early sweep entry must not drop it.
  auto later = capnet::testing::testGrant(7, 100, "tcp", 9000);
  r.add(grantOf(*later.message()));
  clock.set(5000);
  CHECK(r.sweep() == 0);
  CHECK(r.size() == 1);
  clock.set(9000);
  CHECK(r.sweep() == 1);
}

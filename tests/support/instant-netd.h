// netd as capd sees it, when what is under test is capd itself: a NetdLink (capd/netd-link.h)
// that is always connected and accepts every registration, revocation and announcement at once.
// For benchmarks and fuzz targets; capd's own tests use a recording fake (capd/tests/broker-test.cpp).
#pragma once

#include <kj/async.h>

#include "capd/netd-link.h"

namespace capnet::testing {

class InstantNetd final : public NetdLink {
 public:
  bool connected() const override { return true; }
  kj::Promise<bool> registerGrant(idl::Grant::Reader) override { return true; }
  kj::Promise<void> revoke(const GrantToken&) override { return kj::READY_NOW; }
  kj::Promise<void> revokeAll() override { return kj::READY_NOW; }
  kj::Promise<void> announce(const Announcement&) override { return kj::READY_NOW; }
};

}  // namespace capnet::testing

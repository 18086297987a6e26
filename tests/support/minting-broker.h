// capd as fetchd sees it, when what is under test is fetchd (its tests and fuzz targets): every
// uid is a principal holding net.http.fetch, every check is allowed with the fetch limits of a
// MintingPolicy, and every ticket of the policy's ticket byte redeems for the grant whose token is
// sixteen token bytes (the test registers that grant with netd itself). It counts what it was asked.
#pragma once

#include <kj/async.h>

#include <algorithm>
#include <cstdint>

#include "idl/cap.capnp.h"

namespace capnet::testing {

struct MintingPolicy {
  uint64_t maxBodyBytes = 0;     // the fetch limits every check reports (zero: fetchd's defaults)
  uint32_t maxHeaderBytes = 0;
  uint32_t maxRedirects = 5;
  uint8_t ticketByte = 0x77;     // the ticket the app "got from capd"
  uint8_t tokenByte = 0x42;      // the grant's token
  int grantRequests = 0;         // requestGrantFor calls
  int revokes = 0;               // revoke calls for the grant
};

class MintingBroker final : public idl::Broker::Server {
 public:
  explicit MintingBroker(MintingPolicy& policy) : policy_(policy) {}
  kj::Promise<void> check(CheckContext context) override {
    context.getResults().initDecision().setAllowed(true);
    auto f = context.getResults().initFetch();
    f.setMaxBodyBytes(policy_.maxBodyBytes);
    f.setMaxHeaderBytes(policy_.maxHeaderBytes);
    f.setMaxRedirects(policy_.maxRedirects);
    return kj::READY_NOW;
  }
  kj::Promise<void> describe(DescribeContext context) override {
    context.getResults().setIsPrincipal(true);
    context.getResults().initCapabilities(1).set(0, "net.http.fetch");
    return kj::READY_NOW;
  }
  kj::Promise<void> requestGrantFor(RequestGrantForContext context) override {
    ++policy_.grantRequests;
    auto ticket = context.getParams().getTicket();
    if (ticket.size() != 16 || ticket[0] != policy_.ticketByte) {
      auto r = context.getResults().initResult().initRefused();
      r.setReason(idl::GrantRefusal::BAD_TICKET);
      r.setDetail("no ticket");
      return kj::READY_NOW;
    }
    kj::byte token[16];
    std::fill(token, token + 16, policy_.tokenByte);
    context.getResults().initResult().initGranted().setToken(kj::arrayPtr(token, 16));
    return kj::READY_NOW;
  }
  kj::Promise<void> revoke(RevokeContext context) override {
    auto t = context.getParams().getToken();
    if (t.size() == 16 && t[0] == policy_.tokenByte) ++policy_.revokes;
    context.getResults().setRevoked(true);
    return kj::READY_NOW;
  }

 private:
  MintingPolicy& policy_;
};

}  // namespace capnet::testing

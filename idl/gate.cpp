#include "idl/gate.h"

#include <kj/debug.h>

#include <cstdio>

#include "common/audit.h"

namespace capnet {

GateDecision decideCall(uint64_t interfaceId, uint16_t methodId, const Authorizer& authorizer) {
  GateDecision d;
  d.method = idl::findMethodAuthority(interfaceId, methodId);
  if (d.method == nullptr) {
    char id[40];
    std::snprintf(id, sizeof(id), "%016llx", static_cast<unsigned long long>(interfaceId));
    d.refusal = std::string("permission denied: method @") + std::to_string(methodId) + " of interface 0x" + id +
                " is not in the capability table";
    return d;
  }
  const std::string_view authority = d.method->authority;
  if (authority == "held") {
    d.allowed = true;
  } else if (authority == "principal") {
    d.allowed = authorizer.isPrincipal();
  } else if (authority == "capd") {
    d.allowed = authorizer.isCapd();
  } else {
    d.allowed = authorizer.holds(authority);
  }
  if (!d.allowed) {
    d.refusal = "permission denied: " + std::string(d.method->interfaceName) + "." +
                std::string(d.method->methodName) + " requires " + std::string(authority);
  }
  return d;
}

std::string gateDecision(uint64_t interfaceId, uint16_t methodId, const Authorizer& authorizer) {
  return decideCall(interfaceId, methodId, authorizer).refusal;
}

kj::Maybe<capnp::Capability::Server::DispatchCallResult> refuseUnlessAllowed(uint64_t interfaceId,
                                                                            uint16_t methodId,
                                                                            const Authorizer& authorizer,
                                                                            std::string_view component) {
  GateDecision d = decideCall(interfaceId, methodId, authorizer);
  if (d.allowed) return nullptr;
  if (d.method != nullptr) {
    std::string method = std::string(d.method->interfaceName) + "." + std::string(d.method->methodName);
    auditDenialFor(component, "principal=" + authorizer.who(), "deny",
                   {{"principal", authorizer.who()}, {"method", method}, {"reason", "no-cap"},
                              {"requires", d.method->authority}});
  } else {
    char method[48];
    std::snprintf(method, sizeof(method), "0x%016llx@%u", static_cast<unsigned long long>(interfaceId),
                  static_cast<unsigned>(methodId));
    auditDenialFor(component, "principal=" + authorizer.who(), "deny",
                   {{"principal", authorizer.who()}, {"method", method}, {"reason", "not-in-table"}});
  }
  // Not streaming: a refusal must not hold up or poison the caller's later calls.
  return capnp::Capability::Server::DispatchCallResult{
      kj::Promise<void>(kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::str(d.refusal))),
      false};
}

namespace {

class GatedServer final : public capnp::Capability::Server {
 public:
  GatedServer(kj::Own<capnp::Capability::Server> inner, kj::Own<Authorizer> authorizer, std::string component)
      : inner_(kj::mv(inner)), authorizer_(kj::mv(authorizer)), component_(std::move(component)) {}

  DispatchCallResult dispatchCall(uint64_t interfaceId, uint16_t methodId,
                                  capnp::CallContext<capnp::AnyPointer, capnp::AnyPointer> context) override {
    KJ_IF_MAYBE(refused, refuseUnlessAllowed(interfaceId, methodId, *authorizer_, component_)) {
      return kj::mv(*refused);
    }
    return inner_->dispatchCall(interfaceId, methodId, context);
  }

 private:
  kj::Own<capnp::Capability::Server> inner_;
  kj::Own<Authorizer> authorizer_;
  std::string component_;
};

}  // namespace

capnp::Capability::Client gate(kj::Own<capnp::Capability::Server> server, kj::Own<Authorizer> authorizer,
                               std::string component) {
  return capnp::Capability::Client(kj::heap<GatedServer>(kj::mv(server), kj::mv(authorizer), std::move(component)));
}

}  // namespace capnet

// The dispatch gate every capnet server sits behind. Before a call reaches the implementation, the
// method's required authority is looked up in the generated capability table
// (idl/capability-table.h, from each method's `$requires`) and checked against the connection's
// peer through an Authorizer:
//   a capability ("net.tcp.connect")  passes when authorizer.holds(capability);
//   "principal"                       passes when authorizer.isPrincipal();
//   "capd"                            passes when authorizer.isCapd();
//   "held"                            always passes: holding the object capability is the authority.
// A method missing from the table is refused (deny by default). A refusal is the Cap'n Proto error
// FAILED "permission denied: Broker.reload requires net.dev.enable" and one audit line
// `<component>: deny principal=... method=Broker.reload reason=no-cap requires=net.dev.enable`.
// Allowed calls are not audited here: the method's own decision line (mint, connect, ...) is the
// record, and "held" calls (stream reads and writes) would drown the log.
//
// Use (the Impl must not be `final`; its constructor arguments follow the component name):
//
//   class BrokerImpl : public idl::Broker::Server { ... };
//   idl::Broker::Client client =
//       makeGated<BrokerImpl>(kj::heap<PolicyAuthorizer>(capd, uid), "capd", capd, uid);
#pragma once

#include <capnp/capability.h>
#include <kj/memory.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "idl/capability-table.h"

namespace capnet {

// What the gate asks about the peer of one connection (its SO_PEERCRED uid, resolved by the
// server). Asked on every call, so a config swap applies to connections already open.
class Authorizer {
 public:
  virtual ~Authorizer() = default;
  virtual bool isPrincipal() const = 0;                        // "principal"
  virtual bool isCapd() const = 0;                             // "capd"
  virtual bool holds(std::string_view capability) const = 0;   // a capability name
  virtual std::string who() const = 0;                         // for audit lines.
};

struct GateDecision {
  bool allowed = false;                             // deny is the zero value.
  const idl::MethodAuthority* method = nullptr;     // nullptr: the method is not in the table.
  std::string refusal;                              // empty when allowed.
};

GateDecision decideCall(uint64_t interfaceId, uint16_t methodId, const Authorizer& authorizer);

// The refusal message alone: empty when allowed.
std::string gateDecision(uint64_t interfaceId, uint16_t methodId, const Authorizer& authorizer);

// The gate's step for a server's dispatchCall: null when the call may proceed, else the refused
// call's result (after its audit line). Gated<> below is the usual way to use it.
kj::Maybe<capnp::Capability::Server::DispatchCallResult> refuseUnlessAllowed(uint64_t interfaceId,
                                                                            uint16_t methodId,
                                                                            const Authorizer& authorizer,
                                                                            std::string_view component);

// A generated X::Server implementation `Impl` behind the gate: dispatchCall checks first and calls
// Impl's (the generated switch) only when allowed. The object stays one capnp server, so
// Impl::thisCap() works as usual.
template <typename Impl>
class Gated : public Impl {
 public:
  template <typename... Args>
  Gated(kj::Own<Authorizer> authorizer, std::string component, Args&&... args)
      : Impl(kj::fwd<Args>(args)...), authorizer_(kj::mv(authorizer)), component_(std::move(component)) {}

  capnp::Capability::Server::DispatchCallResult dispatchCall(
      uint64_t interfaceId, uint16_t methodId,
      capnp::CallContext<capnp::AnyPointer, capnp::AnyPointer> context) override {
    KJ_IF_MAYBE(refused, refuseUnlessAllowed(interfaceId, methodId, *authorizer_, component_)) {
      return kj::mv(*refused);
    }
    return Impl::dispatchCall(interfaceId, methodId, context);
  }

 private:
  kj::Own<Authorizer> authorizer_;
  std::string component_;
};

// Constructs Gated<Impl> and returns its typed client.
template <typename Impl, typename... Args>
typename Impl::Serves::Client makeGated(kj::Own<Authorizer> authorizer, std::string component, Args&&... args) {
  return typename Impl::Serves::Client(
      kj::heap<Gated<Impl>>(kj::mv(authorizer), std::move(component), kj::fwd<Args>(args)...));
}

// The same gate around an already-constructed server (for a `final` implementation class). The
// inner server is not the capnp object itself, so it must not use thisCap(); its shortenPath() is
// not forwarded (that would let calls bypass the gate).
capnp::Capability::Client gate(kj::Own<capnp::Capability::Server> server, kj::Own<Authorizer> authorizer,
                               std::string component);

template <typename Interface>
typename Interface::Client gated(kj::Own<typename Interface::Server> server, kj::Own<Authorizer> authorizer,
                                 std::string component = "gate") {
  return gate(kj::mv(server), kj::mv(authorizer), std::move(component)).template castAs<Interface>();
}

}  // namespace capnet

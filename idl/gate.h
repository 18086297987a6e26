// The dispatch gate every capnet server sits behind: before a call reaches the implementation,
// the method's required authority is looked up in the generated capability table and checked
// against the connection's principal. A method missing from the table is refused (deny by
// default). A refusal is a Cap'n Proto error "permission denied: Interface.method requires X";
// every other refusal is a typed result of the method itself.
#pragma once

#include <capnp/capability.h>
#include <kj/memory.h>

#include <string>
#include <string_view>

namespace capnet {

// What the gate asks about the peer of one connection (its SO_PEERCRED uid, resolved by the server).
class Authorizer {
 public:
  virtual ~Authorizer() = default;
  virtual bool isPrincipal() const = 0;                        // "principal"
  virtual bool isCapd() const = 0;                             // "capd"
  virtual bool holds(std::string_view capability) const = 0;   // a capability name
  virtual std::string who() const = 0;                         // for audit lines.
};

// Wraps `server` so every call passes the gate first. "held" always passes (possession of the
// object is the authority).
capnp::Capability::Client gate(kj::Own<capnp::Capability::Server> server, kj::Own<Authorizer> authorizer,
                               std::string component);

template <typename Interface>
typename Interface::Client gated(kj::Own<typename Interface::Server> server, kj::Own<Authorizer> authorizer,
                                 std::string component = "gate") {
  return gate(kj::mv(server), kj::mv(authorizer), std::move(component)).template castAs<Interface>();
}

// The decision alone, for tests and tools: empty string when allowed, else the refusal message.
std::string gateDecision(uint64_t interfaceId, uint16_t methodId, const Authorizer& authorizer);

}  // namespace capnet

#include "idl/gate.h"

#include <kj/debug.h>

#include <algorithm>

#include "common/audit.h"
#include "idl/capability-table.h"

namespace capnet {
namespace idl {

const MethodAuthority* findMethodAuthority(uint64_t interfaceId, uint16_t methodId) {
  auto table = capabilityTable();
  auto it = std::lower_bound(table.begin(), table.end(), std::make_pair(interfaceId, methodId),
                             [](const MethodAuthority& m, const std::pair<uint64_t, uint16_t>& key) {
                               return std::make_pair(m.interfaceId, m.methodId) < key;
                             });
  if (it == table.end() || it->interfaceId != interfaceId || it->methodId != methodId) return nullptr;
  return &*it;
}

}  // namespace idl

std::string gateDecision(uint64_t interfaceId, uint16_t methodId, const Authorizer& authorizer) {
  const idl::MethodAuthority* m = idl::findMethodAuthority(interfaceId, methodId);
  if (m == nullptr) return "permission denied: method not in the capability table";
  bool ok;
  if (m->authority == "held") {
    ok = true;
  } else if (m->authority == "principal") {
    ok = authorizer.isPrincipal();
  } else if (m->authority == "capd") {
    ok = authorizer.isCapd();
  } else {
    ok = authorizer.holds(m->authority);
  }
  if (ok) return {};
  return "permission denied: " + std::string(m->interfaceName) + "." + std::string(m->methodName) +
         " requires " + std::string(m->authority);
}

namespace {

class GatedServer final : public capnp::Capability::Server {
 public:
  GatedServer(kj::Own<capnp::Capability::Server> inner, kj::Own<Authorizer> authorizer, std::string component)
      : inner_(kj::mv(inner)), authorizer_(kj::mv(authorizer)), component_(std::move(component)) {}

  DispatchCallResult dispatchCall(uint64_t interfaceId, uint16_t methodId,
                                  capnp::CallContext<capnp::AnyPointer, capnp::AnyPointer> context) override {
    std::string refusal = gateDecision(interfaceId, methodId, *authorizer_);
    if (!refusal.empty()) {
      const idl::MethodAuthority* m = idl::findMethodAuthority(interfaceId, methodId);
      audit(component_, "deny", {{"principal", authorizer_->who()},
                                 {"method", m ? std::string(m->interfaceName) + "." + std::string(m->methodName)
                                              : std::string("unknown")},
                                 {"reason", "no-cap"},
                                 {"requires", m ? m->authority : std::string_view("?")}});
      return {kj::Promise<void>(KJ_EXCEPTION(FAILED, refusal)), false};
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

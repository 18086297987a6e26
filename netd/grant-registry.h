// The grants netd consults on every connect. capd mints each grant (idl/cap.capnp Grant, the one
// grant record) and registers it over the control channel; netd keeps a copy of that record here
// and decides with no config of its own.
//
// Deny is the zero value: a default-constructed GrantCheck refuses.
#pragma once

#include <capnp/message.h>
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <span>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "common/clock.h"
#include "idl/cap.capnp.h"
#include "idl/grant.h"
#include "idl/net.capnp.h"

namespace capnet {

// A grant check's outcome: allowed, or refused with the connect refusal it becomes (noCap for an
// absent, malformed or unknown token; capExpired, capRevoked, wrongUid, outOfScope). The reason is
// the IDL's enum (idl/net.capnp ConnectRefusal), named through idl/names.h like every refusal.
struct GrantCheck {
  bool allowedFlag = false;                                  // the default denies
  idl::ConnectRefusal refusal = idl::ConnectRefusal::NO_CAP;   // when not allowed
  kj::Maybe<idl::Grant::Reader> grant;   // set when allowed; valid until the registry changes.
  bool allowed() const { return allowedFlag; }
};

// How a presented connect maps to grant schemes: a plain connect matches "tcp" and "http"
// grants; a TLS connect matches "tls" and "https" grants.
class GrantRegistry {
 public:
  explicit GrantRegistry(const Clock& clock);

  // Keeps a copy (replacing a grant with the same token). The caller validated it (token size).
  void add(idl::Grant::Reader grant);
  bool revoke(std::span<const uint8_t> token);
  size_t revokeAll();                         // every grant becomes revoked (devnet off, capd gone).
  size_t size() const { return grants_.size(); }
  kj::Maybe<idl::Grant::Reader> find(const GrantToken& token) const;

  // Checks in order: token known -> not revoked -> unexpired -> holder uid -> scope.
  GrantCheck check(std::span<const uint8_t> token, uid_t presenterUid, bool tls, std::string_view host,
                   uint16_t port) const;

  // Drops expired grants, oldest first: the cost is the number that expired, not a scan of all.
  size_t sweep();

 private:
  const Clock& clock_;
  std::unordered_map<GrantToken, kj::Own<capnp::MallocMessageBuilder>, GrantTokenHash> grants_;
  std::multimap<int64_t, GrantToken> byExpiry_;   // may name grants already revoked.
  // Revoked tokens are remembered (bounded, oldest forgotten first) so a refusal can say
  // "revoked" rather than "no-cap".
  std::unordered_set<GrantToken, GrantTokenHash> revoked_;
  std::deque<GrantToken> revokedOrder_;
};

}  // namespace capnet

// The grant lookup netd consults on every connect. capd mints grants and registers them with
// netd over the control channel (idl/cap.capnp NetControl); netd keeps them here and decides
// with no config of its own. This header is capd's public contract with netd.
//
// Deny is the zero value: a default-constructed GrantCheck refuses.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "common/rpc-server.h"

namespace capnet {

inline constexpr size_t kGrantTokenBytes = 16;   // 128 bits from getrandom(2).
using GrantToken = std::array<uint8_t, kGrantTokenBytes>;
struct GrantTokenHash {
  size_t operator()(const GrantToken& t) const;   // tokens are random: their first bytes suffice.
};

enum class TimePolicy : uint8_t { kEnforce = 0, kIgnoreValidity = 1 };
enum class MinTlsVersion : uint8_t { kTls13 = 0, kTls12 = 1 };

struct GrantTls {
  MinTlsVersion minVersion = MinTlsVersion::kTls13;
  TimePolicy timePolicy = TimePolicy::kEnforce;
  std::vector<std::array<uint8_t, 32>> pins;   // SPKI SHA-256; empty = no pinning.
  int64_t pinsExpireAtMs = 0;
};

struct GrantRecord {
  GrantToken token{};
  uint64_t id = 0;           // capd's serial: names the grant in audit lines, never the token.
  uid_t subjectUid = 0;      // on whose behalf.
  uid_t holderUid = 0;       // who may present it.
  std::string scheme;        // "tcp" | "tls" | "http" | "https".
  std::string host;
  uint16_t port = 0;
  uint32_t address = 0;      // IPv4, host byte order.
  int64_t expiresAtMs = 0;
  GrantTls tls;
  uint32_t connectTimeoutMs = 5000;
  uint32_t handshakeTimeoutMs = 5000;
};

// What capd tells netd with every announcement (NetControl.announce): the policy's principals
// and what each holds, so netd's gate decides from facts rather than answering yes for everyone,
// and the limits netd enforces per principal.
struct PrincipalFacts {
  uid_t uid = 0;
  std::vector<std::string> capabilities;
};

struct NetLimits {
  uint32_t streamsPerPrincipal = 16;     // network.limits.streamsPerPrincipal (open + connecting)
  uint32_t connectionsPerUid = 8;        // network.limits.connectionsPerUid (netd's app socket)
  uint32_t firstCallDeadlineMs = 5000;   // network.limits.firstCallDeadlineMs
  uint32_t maxStreamMs = 300000;         // network.grants.maxStreamMs: life of a stream past its grant's expiry
};

// A socket server's per-peer limits with the policy's caps applied.
inline RpcLimits withPeerLimits(RpcLimits base, const NetLimits& l) {
  base.maxConnectionsPerUid = l.connectionsPerUid;
  base.firstCallDeadlineMs = l.firstCallDeadlineMs;
  return base;
}

struct Announcement {
  bool devnetEnabled = false;
  uint64_t generation = 0;
  std::vector<PrincipalFacts> principals;
  NetLimits limits;
};

enum class GrantDecision : uint8_t {
  kNoCap = 0,        // absent, malformed or unknown token. The zero value denies.
  kExpired,
  kRevoked,
  kWrongUid,
  kOutOfScope,
  kAllowed,
};

struct GrantCheck {
  GrantDecision decision = GrantDecision::kNoCap;
  const GrantRecord* grant = nullptr;   // set when allowed; valid until the registry changes.
  bool allowed() const { return decision == GrantDecision::kAllowed; }
};

// How audit lines name a grant: "g<id>".
std::string grantName(const GrantRecord& g);

// Stable reason strings for audit lines and refusals: "no-cap", "expired", "revoked", ...
std::string_view grantDecisionReason(GrantDecision d);

// How a presented connect maps to grant schemes: a plain connect matches "tcp" and "http"
// grants; a TLS connect matches "tls" and "https" grants.
class GrantRegistry {
 public:
  explicit GrantRegistry(const Clock& clock);

  void add(GrantRecord grant);                // replaces a record with the same token.
  bool revoke(std::span<const uint8_t> token);
  size_t revokeAll();                         // every grant becomes revoked (devnet off, capd gone).
  size_t size() const { return grants_.size(); }
  const GrantRecord* find(const GrantToken& token) const;

  // Checks in order: token known -> not revoked -> unexpired -> holder uid -> scope.
  GrantCheck check(std::span<const uint8_t> token, uid_t presenterUid, bool tls,
                   std::string_view host, uint16_t port) const;

  // Drops expired records (called from a timer; check() never trusts a stale record anyway).
  size_t sweep();

 private:
  using TokenHash = GrantTokenHash;
  const Clock& clock_;
  std::unordered_map<GrantToken, GrantRecord, TokenHash> grants_;
  // Revoked tokens are remembered (bounded, oldest forgotten first) so a refusal can say
  // "revoked" rather than "no-cap".
  std::unordered_set<GrantToken, TokenHash> revoked_;
  std::vector<GrantToken> revokedOrder_;
};

}  // namespace capnet

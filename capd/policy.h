// The immutable policy object capd decides from. Built from a validated ConfigDocument (or as
// deny-all when the config is invalid); swapped whole on reload, never mutated.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "capd/config.h"
#include "common/rpc-server.h"
#include "idl/cap.capnp.h"
#include "idl/grant.h"
#include "idl/names.h"

namespace capnet {

enum class TimePolicy : uint8_t { kEnforce = 0, kIgnoreValidity = 1 };
enum class MinTlsVersion : uint8_t { kTls13 = 0, kTls12 = 1 };

// The TLS terms a decision gives a grant (they travel in idl::Grant.tls).
struct GrantTls {
  MinTlsVersion minVersion = MinTlsVersion::kTls13;
  TimePolicy timePolicy = TimePolicy::kEnforce;
  std::vector<std::array<uint8_t, 32>> pins;   // SPKI SHA-256; empty = no pinning.
  int64_t pinsExpireAtMs = 0;
};

// What capd announces to netd with every policy (NetControl.announce): the principals and what
// each holds, so netd's gate decides from facts, and the limits netd enforces per principal.
struct PrincipalFacts {
  uid_t uid = 0;
  std::vector<std::string> capabilities;
};

struct NetLimits {
  uint32_t streamsPerPrincipal = 16;     // network.limits.streamsPerPrincipal
  uint32_t connectionsPerUid = 8;        // network.limits.connectionsPerUid
  uint32_t firstCallDeadlineMs = 5000;   // network.limits.firstCallDeadlineMs
  uint32_t maxStreamMs = 300000;         // network.grants.maxStreamMs
};

struct Announcement {
  bool devnetEnabled = false;
  uint64_t generation = 0;
  std::vector<PrincipalFacts> principals;
  NetLimits limits;
};

struct PrincipalInfo {
  std::string name;
  uid_t uid = 0;
  std::set<std::string, std::less<>> capabilities;
  bool holds(std::string_view capability) const { return capabilities.count(capability) != 0; }
};


struct GrantRequest {
  uid_t callerUid = 0;          // SO_PEERCRED of the broker connection.
  uid_t subjectUid = 0;         // == callerUid unless delegated.
  bool delegated = false;       // requestGrantFor (fetchd) rather than requestGrant.
  std::string scheme;
  std::string host;
  uint16_t port = 0;
};

struct PolicyDecision {
  bool allowed = false;
  idl::GrantRefusal denial = idl::GrantRefusal::INTERNAL;
  std::string reason;                 // the first rule that denied, or "allowed".
  std::vector<std::string> rules;     // every rule evaluated, in order, with its outcome.
  // Filled when allowed: what the grant carries to netd.
  uint32_t address = 0;
  GrantTls tls;
  bool ignoreValidityWarning = false; // ignore-validity is in force: say so loudly.
  uint32_t connectTimeoutMs = 0;
  uint32_t handshakeTimeoutMs = 0;
};

class Policy {
 public:
  // A policy that denies everything, e.g. because the config did not validate.
  static std::shared_ptr<const Policy> denyAll(std::string source, std::vector<std::string> problems);
  static std::shared_ptr<const Policy> fromConfig(std::shared_ptr<const ConfigDocument> config,
                                                  std::string source);

  bool valid() const { return config_ != nullptr; }
  const std::vector<std::string>& problems() const { return problems_; }
  const std::string& source() const { return source_; }
  bool devnetEnabled() const { return devnet_; }
  uint32_t grantLifetimeMs() const { return lifetimeMs_; }
  // network.limits and grants.maxStreamMs (defaults when the config is invalid: deny-all still
  // bounds every peer).
  const NetLimits& netLimits() const { return netLimits_; }
  uint32_t grantsPerPrincipal() const { return grantsPerPrincipal_; }
  // network.http and network.timeouts.totalMs, for fetchd (Broker.check's FetchPolicy).
  struct Http {
    uint64_t maxBodyBytes = 8u << 20;
    uint32_t maxHeaderBytes = 16384;
    uint32_t maxRedirects = 5;   // 0 when redirects are "none".
    uint32_t totalMs = 30000;
  };
  const Http& http() const { return http_; }
  uint32_t fetchesPerPrincipal() const { return fetchesPerPrincipal_; }
  // What netd is told: devnet, every principal with its capabilities, the limits.
  Announcement announcement(uint64_t generation) const;

  const PrincipalInfo* principalByUid(uid_t uid) const;
  const PrincipalInfo* principalByName(std::string_view name) const;
  bool holds(uid_t uid, std::string_view capability) const;

  // Destinations are the hosts map only: a name listed there, or an IPv4 literal that is one of
  // its addresses. There is no DNS.
  std::optional<uint32_t> resolve(std::string_view host) const;

  // The mint decision. nowMs decides whether pin sets have expired.
  PolicyDecision decideGrant(const GrantRequest& request, int64_t nowMs) const;

  // Whether `uid` holds `capability`, explained (Broker.check).
  PolicyDecision decideCapability(uid_t uid, std::string_view capability) const;

  std::string summary() const;   // one line for `capd --check` and start-up.

 private:
  Policy() = default;
  std::shared_ptr<const ConfigDocument> config_;
  std::string source_;
  std::vector<std::string> problems_;
  bool devnet_ = false;
  uint32_t lifetimeMs_ = 60000;
  NetLimits netLimits_;
  uint32_t grantsPerPrincipal_ = 64;
  uint32_t fetchesPerPrincipal_ = 4;
  Http http_;
  std::map<uid_t, PrincipalInfo> byUid_;
  std::map<std::string, uid_t, std::less<>> byName_;
  std::map<std::string, uint32_t, std::less<>> hosts_;
};

// The capabilities a scheme needs of the subject (docs/networking/security-model.md).
std::vector<std::string_view> capabilitiesForScheme(std::string_view scheme, bool hostIsName);

}  // namespace capnet

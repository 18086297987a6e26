// capd's broker: the policy snapshot, the grants it minted, and the Broker capability served to
// each connection (idl/cap.capnp). Socket handling lives in common/rpc-server.h; this is the logic.
#pragma once

#include <optional>

#include "common/url.h"

#include <sys/types.h>

#include <functional>
#include <span>
#include <map>
#include <unordered_map>
#include <memory>
#include <string>
#include <vector>

#include "capd/netd-link.h"
#include "capd/policy.h"
#include "common/clock.h"
#include "common/paths.h"
#include "idl/cap.capnp.h"

namespace capnet {

// Where the policy comes from: the image's read-only default, overridden by the state disk's copy
// when that file exists.
struct ConfigSources {
  std::string imagePath;
  std::string statePath;   // empty: none.
};

// Loads the policy the sources describe; an unreadable or invalid file yields a deny-all policy
// that carries the problems (never a fallback to another file that might allow more).
std::shared_ptr<const Policy> loadPolicy(const ConfigSources& sources);

// `capd --explain` and Broker.explain: the decision for `uid` fetching or connecting to `url`,
// with every rule. A dry run: nothing is minted.
PolicyDecision explainUrl(const Policy& policy, uid_t uid, std::string_view url, int64_t nowMs,
                          std::optional<Url>* parsed = nullptr);

using TokenSource = std::function<GrantToken()>;
GrantToken randomToken();   // getrandom(2); aborts the mint (never a weak token) on failure.

struct MintOutcome {
  bool granted = false;
  GrantToken token{};
  int64_t expiresAtMs = 0;
  idl::GrantRefusal denial = idl::GrantRefusal::INTERNAL;
  std::string detail;
};

// Delegation tickets (Broker.requestTicket): one-shot, short-lived, bound to the subject that
// asked, the delegate that may redeem it and the exact scope.
inline constexpr int64_t kTicketLifetimeMs = 10000;
inline constexpr size_t kTicketsPerPrincipal = 16;

struct TicketOutcome {
  bool issued = false;
  GrantToken ticket{};
  int64_t expiresAtMs = 0;
  idl::GrantRefusal denial = idl::GrantRefusal::INTERNAL;
  std::string detail;
};

struct ReloadOutcome {
  bool applied = false;
  std::vector<std::string> errors;
  size_t revoked = 0;
};

class Capd {
 public:
  Capd(const Clock& clock, NetdLink& netd, ConfigSources sources, TokenSource tokens = randomToken);

  std::shared_ptr<const Policy> policy() const { return policy_; }
  uint64_t generation() const { return generation_; }
  size_t activeGrants() const;
  bool netdConnected() const { return netd_.connected(); }
  int64_t nowMs() const { return clock_.nowMs(); }
  const ConfigSources& sources() const { return sources_; }

  // Start-up: load whatever the sources say (a bad config denies everything).
  void start();
  // Reload: validate whole; apply atomically or keep the old policy and report the errors.
  kj::Promise<ReloadOutcome> reload();
  // Swap in a policy (tests, and reload after loading). Revokes every grant the new policy no
  // longer allows, and all of them when devnet goes off.
  kj::Promise<ReloadOutcome> apply(std::shared_ptr<const Policy> next);

  kj::Promise<MintOutcome> mint(const GrantRequest& request);

  // An app asks for a ticket that lets `delegate` (a principal name) fetch `scope` for it.
  TicketOutcome issueTicket(uid_t subject, const std::string& delegate, const std::string& scheme,
                            const std::string& host, uint16_t port);
  // A delegate redeems a ticket for a grant on the subject's behalf: consumed whether or not the
  // mint then succeeds.
  kj::Promise<MintOutcome> mintDelegated(uid_t delegate, std::span<const uint8_t> ticket,
                                         const std::string& scheme, const std::string& host, uint16_t port);
  size_t liveTickets() const { return tickets_.size(); }
  // The holder or subject may revoke; anyone else learns nothing (false).
  kj::Promise<bool> revoke(uid_t caller, const GrantToken& token);

  // netd (re)connected: tell it the policy and every live grant.
  kj::Promise<void> resync();

  // What capd serves to a connection whose peer is `uid`: the Broker and TrustManager.
  idl::CapdService::Client brokerFor(uid_t uid);
  // The socket's factory: a uid in no policy gets no bootstrap at all (null, and an audit line).
  kj::Maybe<capnp::Capability::Client> connectionFor(uid_t uid);
  // Told of every policy swap (start, reload): the socket server takes its per-peer limits from it.
  void setPolicyObserver(std::function<void(const Policy&)> observer) { observer_ = std::move(observer); }

  // Where the trust store lives (pkg://trust/, state:/trust/installed/); tests point it elsewhere.
  const Roots& trustRoots() const { return trustRoots_; }
  void setTrustRoots(Roots roots) { trustRoots_ = std::move(roots); }

 private:
  // A live grant: the idl::Grant record capd minted (the one grant record, owned), and the
  // request it answered (re-decided at every reload).
  struct Live {
    kj::Own<capnp::MallocMessageBuilder> message;
    GrantRequest request;
    idl::Grant::Reader grant() const { return grantOf(*message); }
  };
  void expire();
  void remember(kj::Own<capnp::MallocMessageBuilder> grant, const GrantRequest& request);
  void forget(const GrantToken& token);
  size_t grantsOf(uid_t subject) const;

  const Clock& clock_;
  NetdLink& netd_;
  ConfigSources sources_;
  TokenSource tokens_;
  std::shared_ptr<const Policy> policy_;
  uint64_t generation_ = 0;
  std::unordered_map<GrantToken, Live, GrantTokenHash> live_;
  std::multimap<int64_t, GrantToken> byExpiry_;   // expiry -> token (may name forgotten grants).
  std::map<uid_t, size_t> perSubject_;
  uint64_t nextGrantId_ = 1;
  struct Ticket {
    uid_t subject = 0;
    uid_t delegate = 0;
    std::string scheme, host;
    uint16_t port = 0;
    int64_t expiresAtMs = 0;
    uint64_t id = 0;
  };
  void expireTickets();
  std::unordered_map<GrantToken, Ticket, GrantTokenHash> tickets_;
  std::multimap<int64_t, GrantToken> ticketsByExpiry_;
  std::map<uid_t, size_t> ticketsPerSubject_;
  uint64_t nextTicketId_ = 1;
  Roots trustRoots_;
  std::function<void(const Policy&)> observer_;
};

}  // namespace capnet

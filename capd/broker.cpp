#include "capd/broker.h"

#include "common/url.h"

#include <sys/random.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "common/audit.h"
#include "trust/trust-store.h"
#include "idl/gate.h"

namespace capnet {
namespace {

std::string scopeText(std::string_view scheme, std::string_view host, uint16_t port) {
  return std::string(scheme) + "://" + std::string(host) + ":" + std::to_string(port);
}
std::string scopeText(const GrantRequest& r) { return scopeText(r.scheme, r.host, r.port); }

std::string principalName(const Policy& p, uid_t uid) {
  const PrincipalInfo* info = p.principalByUid(uid);
  return info ? info->name : "uid:" + std::to_string(uid);
}


// Whether a grant minted earlier carries exactly what `d` would give it now.
// The grant's terms as a decision gives them: the address, TLS policy and timeouts.
void fillTerms(const PolicyDecision& d, idl::Grant::Builder g) {
  g.setAddress(d.address);
  auto tls = g.initTls();
  tls.setMinVersion(d.tls.minVersion == MinTlsVersion::kTls12 ? idl::TlsVersion::TLS12 : idl::TlsVersion::TLS13);
  tls.setTimePolicy(d.tls.timePolicy == TimePolicy::kIgnoreValidity ? idl::CertTimePolicy::IGNORE_VALIDITY
                                                                     : idl::CertTimePolicy::ENFORCE);
  auto pins = tls.initPins(static_cast<unsigned>(d.tls.pins.size()));
  for (unsigned i = 0; i < pins.size(); ++i) pins[i].setSpkiSha256(kj::arrayPtr(d.tls.pins[i].data(), 32));
  tls.setPinsExpireAtMs(d.tls.pinsExpireAtMs);
  g.setConnectTimeoutMs(d.connectTimeoutMs);
  g.setHandshakeTimeoutMs(d.handshakeTimeoutMs);
}

// Whether a grant minted earlier carries exactly what `d` would give it now.
bool sameTerms(const PolicyDecision& d, idl::Grant::Reader g) {
  capnp::MallocMessageBuilder now;
  auto terms = now.initRoot<idl::Grant>();
  fillTerms(d, terms);
  auto a = terms.asReader();
  if (a.getAddress() != g.getAddress() || a.getConnectTimeoutMs() != g.getConnectTimeoutMs() ||
      a.getHandshakeTimeoutMs() != g.getHandshakeTimeoutMs()) {
    return false;
  }
  auto ta = a.getTls(), tb = g.getTls();
  if (ta.getMinVersion() != tb.getMinVersion() || ta.getTimePolicy() != tb.getTimePolicy() ||
      ta.getPinsExpireAtMs() != tb.getPinsExpireAtMs() || ta.getPins().size() != tb.getPins().size()) {
    return false;
  }
  for (unsigned i = 0; i < ta.getPins().size(); ++i) {
    if (ta.getPins()[i].getSpkiSha256() != tb.getPins()[i].getSpkiSha256()) return false;
  }
  return true;
}

void fillDecision(const PolicyDecision& d, idl::Decision::Builder out) {
  out.setAllowed(d.allowed);
  out.setReason(d.reason);
  auto rules = out.initRules(static_cast<unsigned>(d.rules.size()));
  for (unsigned i = 0; i < rules.size(); ++i) rules.set(i, d.rules[i]);
}

bool fileExists(const std::string& path) {
  struct stat st {};
  return !path.empty() && ::lstat(path.c_str(), &st) == 0;
}

// Authority for the dispatch gate: the connection's uid against the current policy.
class PolicyAuthorizer final : public Authorizer {
 public:
  PolicyAuthorizer(Capd& capd, uid_t uid) : capd_(capd), uid_(uid) {}
  bool isPrincipal() const override { return capd_.policy()->principalByUid(uid_) != nullptr; }
  bool isCapd() const override { return false; }
  bool holds(std::string_view capability) const override { return capd_.policy()->holds(uid_, capability); }
  std::string who() const override { return principalName(*capd_.policy(), uid_); }

 private:
  Capd& capd_;
  uid_t uid_;
};

class BrokerImpl final : public idl::CapdService::Server {
 public:
  BrokerImpl(Capd& capd, uid_t uid) : capd_(capd), uid_(uid) {}

  kj::Promise<void> requestGrant(RequestGrantContext context) override {
    auto scope = context.getParams().getScope();
    GrantRequest r{uid_, uid_, false, scope.getScheme(), scope.getHost(), scope.getPort()};
    return mintInto(r, context);
  }

  kj::Promise<void> requestGrantFor(RequestGrantForContext context) override {
    auto params = context.getParams();
    auto scope = params.getScope();
    auto ticket = params.getTicket();
    return capd_.mintDelegated(uid_, std::span<const uint8_t>(ticket.begin(), ticket.size()), scope.getScheme(),
                               scope.getHost(), scope.getPort())
        .then([context](MintOutcome out) mutable { fillMint(out, context.getResults().initResult()); });
  }

  kj::Promise<void> describe(DescribeContext context) override {
    const PrincipalInfo* p = capd_.policy()->principalByUid(context.getParams().getUid());
    auto r = context.getResults();
    r.setIsPrincipal(p != nullptr);
    if (p != nullptr) {
      auto caps = r.initCapabilities(static_cast<unsigned>(p->capabilities.size()));
      unsigned i = 0;
      for (const auto& c : p->capabilities) caps.set(i++, c);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> requestTicket(RequestTicketContext context) override {
    auto params = context.getParams();
    auto scope = params.getScope();
    std::string delegate = params.getDelegate();
    if (delegate.empty()) delegate = "fetchd";
    TicketOutcome t = capd_.issueTicket(uid_, delegate, scope.getScheme(), scope.getHost(), scope.getPort());
    auto result = context.getResults().initResult();
    if (t.issued) {
      auto i = result.initIssued();
      i.setTicket(kj::arrayPtr(t.ticket.data(), t.ticket.size()));
      i.setExpiresAtMs(t.expiresAtMs);
    } else {
      auto r = result.initRefused();
      r.setReason(t.denial);
      r.setDetail(t.detail);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> revoke(RevokeContext context) override {
    auto bytes = context.getParams().getToken();
    GrantToken token{};
    if (bytes.size() != token.size()) {
      context.getResults().setRevoked(false);
      return kj::READY_NOW;
    }
    std::copy(bytes.begin(), bytes.end(), token.begin());
    return capd_.revoke(uid_, token).then([context](bool revoked) mutable {
      context.getResults().setRevoked(revoked);
    });
  }

  kj::Promise<void> check(CheckContext context) override {
    auto params = context.getParams();
    auto policy = capd_.policy();
    auto d = policy->decideCapability(params.getSubjectUid(), params.getCapability().cStr());
    fillDecision(d, context.getResults().initDecision());
    auto f = context.getResults().initFetch();
    f.setMaxBodyBytes(policy->http().maxBodyBytes);
    f.setMaxHeaderBytes(policy->http().maxHeaderBytes);
    f.setMaxRedirects(policy->http().maxRedirects);
    f.setTotalMs(policy->http().totalMs);
    f.setFetchesPerPrincipal(policy->fetchesPerPrincipal());
    f.setConnectionsPerUid(policy->netLimits().connectionsPerUid);
    f.setFirstCallDeadlineMs(policy->netLimits().firstCallDeadlineMs);
    return kj::READY_NOW;
  }

  kj::Promise<void> explain(ExplainContext context) override {
    auto params = context.getParams();
    auto policy = capd_.policy();
    PolicyDecision d;
    const PrincipalInfo* p = policy->principalByName(params.getPrincipal().cStr());
    if (p == nullptr) {
      d.reason = "unknown-principal";
      d.rules.push_back("principal \"" + std::string(params.getPrincipal().cStr()) + "\" exists: deny");
    } else {
      d = explainUrl(*policy, p->uid, params.getUrl().cStr(), capd_.nowMs());
    }
    fillDecision(d, context.getResults().initDecision());
    return kj::READY_NOW;
  }

  kj::Promise<void> reload(ReloadContext context) override {
    audit("capd", "reload-requested", {{"principal", principalName(*capd_.policy(), uid_)}});
    return capd_.reload().then([context](ReloadOutcome out) mutable {
      auto results = context.getResults();
      results.setApplied(out.applied);
      auto errors = results.initErrors(static_cast<unsigned>(out.errors.size()));
      for (unsigned i = 0; i < errors.size(); ++i) errors.set(i, out.errors[i]);
    });
  }

  // ---- TrustManager (idl/trust.capnp): installed roots on the state disk --------------------------

  kj::Promise<void> list(ListContext context) override {
    TrustStore store(capd_.trustRoots());
    auto roots = store.list();
    auto out = context.getResults().initRoots(static_cast<unsigned>(roots.size()));
    for (unsigned i = 0; i < out.size(); ++i) fillRoot(roots[i], out[i]);
    return kj::READY_NOW;
  }

  kj::Promise<void> add(AddContext context) override {
    auto pem = context.getParams().getPem();
    auto r = TrustStore(capd_.trustRoots()).add(std::span<const uint8_t>(pem.begin(), pem.size()), capd_.nowMs());
    auto results = context.getResults();
    std::string who = principalName(*capd_.policy(), uid_);
    if (!r.ok()) {
      audit("trust", "deny", {{"principal", who}, {"action", "add"}, {"reason", r.message()}});
      results.setAdded(false);
      results.setError(r.message());
      return kj::READY_NOW;
    }
    audit("trust", "add", {{"fingerprint", hexFingerprint(r->sha256)}, {"principal", who}, {"subject", r->subject}});
    results.setAdded(true);
    fillRoot(r.value(), results.initRoot());
    return kj::READY_NOW;
  }

  kj::Promise<void> remove(RemoveContext context) override {
    auto sha = context.getParams().getSha256();
    std::array<uint8_t, 32> digest{};
    auto results = context.getResults();
    std::string who = principalName(*capd_.policy(), uid_);
    if (sha.size() != digest.size()) {
      results.setRemoved(false);
      results.setError("sha256: must be 32 bytes");
      return kj::READY_NOW;
    }
    std::copy(sha.begin(), sha.end(), digest.begin());
    auto r = TrustStore(capd_.trustRoots()).remove(hexFingerprint(digest));
    if (!r.ok()) {
      audit("trust", "deny", {{"principal", who}, {"action", "remove"}, {"reason", r.message()}});
      results.setRemoved(false);
      results.setError(r.message());
      return kj::READY_NOW;
    }
    audit("trust", "remove", {{"fingerprint", hexFingerprint(digest)}, {"principal", who}});
    results.setRemoved(true);
    return kj::READY_NOW;
  }

  kj::Promise<void> status(StatusContext context) override {
    auto policy = capd_.policy();
    auto r = context.getResults();
    r.setDevnetEnabled(policy->devnetEnabled());
    r.setConfigValid(policy->valid());
    r.setConfigSource(policy->source());
    r.setActiveGrants(static_cast<uint32_t>(capd_.activeGrants()));
    r.setNetdConnected(capd_.netdConnected());
    return kj::READY_NOW;
  }

 private:
  static void fillRoot(const TrustRoot& r, idl::Root::Builder out) {
    out.setSha256(kj::arrayPtr(r.sha256.data(), r.sha256.size()));
    out.setSubject(r.subject);
    out.setNotAfter(r.notAfter);
    out.setOrigin(r.origin);
  }

  static void fillMint(const MintOutcome& out, idl::GrantResult::Builder result) {
    if (out.granted) {
      auto g = result.initGranted();
      g.setToken(kj::arrayPtr(out.token.data(), out.token.size()));
      g.setExpiresAtMs(out.expiresAtMs);
    } else {
      auto refused = result.initRefused();
      refused.setReason(out.denial);
      refused.setDetail(out.detail);
    }
  }

  template <typename Context>
  kj::Promise<void> mintInto(GrantRequest r, Context context) {
    return capd_.mint(r).then([context](MintOutcome out) mutable { fillMint(out, context.getResults().initResult()); });
  }

  Capd& capd_;
  uid_t uid_;
};

}  // namespace

// A dry run of what a principal may reach at `url`, parsed by the one URL parser fetchd uses
// (common/url.h) with the scope schemes (tcp://, tls://) added.
PolicyDecision explainUrl(const Policy& policy, uid_t uid, std::string_view url, int64_t now, std::optional<Url>* parsedOut) {
  GrantRequest r;
  r.callerUid = uid;
  r.subjectUid = uid;
  auto parsed = parseUrl(url, UrlSchemes::kScopes);
  if (!parsed.ok()) {
    PolicyDecision d;
    d.denial = idl::GrantRefusal::BAD_SCOPE;
    d.reason = std::string(enumName(d.denial)) + " (" + parsed.message() + ")";
    d.rules.push_back("URL parses (" + parsed.message() + "): deny");
    return d;
  }
  if (parsedOut != nullptr) *parsedOut = parsed.value();
  r.scheme = parsed->scheme;
  r.host = parsed->host;
  r.port = parsed->port;
  // http(s) is what fetchd asks for on a principal's behalf: explain it as that delegation.
  if (r.scheme == "http" || r.scheme == "https") {
    PolicyDecision d;
    if (r.host == "fixture.local") {
      d = policy.decideCapability(uid, "net.http.fetch");
      d.rules.insert(d.rules.begin(), "fixture.local is the fixture path (httpstubd): needs net.http.fetch");
      return d;
    }
    auto fetchCheck = policy.decideCapability(uid, "net.http.fetch");
    if (!fetchCheck.allowed) return fetchCheck;
    for (const auto& p : {"fetchd"}) {
      if (const PrincipalInfo* f = policy.principalByName(p)) {
        r.callerUid = f->uid;
        r.delegated = true;
      }
    }
    d = policy.decideGrant(r, now);
    d.rules.insert(d.rules.begin(), fetchCheck.rules.begin(), fetchCheck.rules.end());
    return d;
  }
  return policy.decideGrant(r, now);
}


std::shared_ptr<const Policy> loadPolicy(const ConfigSources& sources) {
  const std::string& path = fileExists(sources.statePath) ? sources.statePath : sources.imagePath;
  auto loaded = loadConfigFile(path);
  if (auto* problems = std::get_if<ConfigProblems>(&loaded)) {
    return Policy::denyAll(path, problems->problems);
  }
  return Policy::fromConfig(std::get<std::shared_ptr<const ConfigDocument>>(loaded), path);
}

GrantToken randomToken() {
  GrantToken t{};
  size_t got = 0;
  while (got < t.size()) {
    ssize_t n = getrandom(t.data() + got, t.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // No kernel randomness means no unforgeable token: refuse to run rather than mint a weak one.
      audit("capd", "fatal", {{"reason", "getrandom-failed"}});
      std::abort();
    }
    got += static_cast<size_t>(n);
  }
  return t;
}

Capd::Capd(const Clock& clock, NetdLink& netd, ConfigSources sources, TokenSource tokens)
    : clock_(clock), netd_(netd), sources_(std::move(sources)), tokens_(std::move(tokens)),
      policy_(Policy::denyAll("(not loaded)", {"capd has not loaded a config yet"})) {}

size_t Capd::activeGrants() const {
  const int64_t now = clock_.nowMs();
  return static_cast<size_t>(std::count_if(live_.begin(), live_.end(),
                                           [now](const auto& l) { return l.second.grant().getExpiresAtMs() > now; }));
}

size_t Capd::grantsOf(uid_t subject) const {
  auto it = perSubject_.find(subject);
  return it == perSubject_.end() ? 0 : it->second;
}

void Capd::forget(const GrantToken& token) {
  auto it = live_.find(token);
  if (it == live_.end()) return;
  auto s = perSubject_.find(it->second.grant().getSubjectUid());
  if (s != perSubject_.end() && --s->second == 0) perSubject_.erase(s);
  live_.erase(it);
}

void Capd::expire() {
  // Oldest expiry first: the cost is the number of grants that expired, not a scan of all.
  const int64_t now = clock_.nowMs();
  while (!byExpiry_.empty() && byExpiry_.begin()->first <= now) {
    forget(byExpiry_.begin()->second);
    byExpiry_.erase(byExpiry_.begin());
  }
}

void Capd::remember(kj::Own<capnp::MallocMessageBuilder> message, const GrantRequest& request) {
  Live l{kj::mv(message), request};
  auto g = l.grant();
  GrantToken token = grantToken(g);
  byExpiry_.emplace(g.getExpiresAtMs(), token);
  ++perSubject_[g.getSubjectUid()];
  live_.emplace(token, kj::mv(l));
}

void Capd::start() {
  policy_ = loadPolicy(sources_);
  ++generation_;
  if (observer_) observer_(*policy_);
  if (policy_->valid()) {
    audit("capd", "config", {{"state", "ok"}, {"source", policy_->source()},
                             {"devnet", policy_->devnetEnabled() ? "on" : "off"}});
  } else {
    audit("capd", "config", {{"state", "invalid"}, {"source", policy_->source()}, {"action", "deny-all"}});
    for (const auto& p : policy_->problems()) audit("capd", "config-problem", {{"problem", p}});
  }
}

kj::Promise<ReloadOutcome> Capd::reload() {
  auto next = loadPolicy(sources_);
  if (!next->valid()) {
    ReloadOutcome out;
    out.errors = next->problems();
    audit("capd", "reload", {{"applied", "no"}, {"source", next->source()},
                             {"problems", std::to_string(out.errors.size())}});
    for (const auto& p : out.errors) audit("capd", "config-problem", {{"problem", p}});
    return out;
  }
  return apply(std::move(next));
}

kj::Promise<ReloadOutcome> Capd::apply(std::shared_ptr<const Policy> next) {
  ReloadOutcome out;
  out.applied = true;
  policy_ = std::move(next);   // the one atomic swap: every later decision sees the new policy.
  ++generation_;
  if (observer_) observer_(*policy_);
  expire();
  // Keep only the grants the new policy would still mint exactly as they are: a grant whose
  // capability, host, address, pins or TLS policy changed is revoked (netd closes its streams).
  std::vector<GrantToken> revoked;
  for (auto& [token, l] : live_) {
    PolicyDecision d = policy_->decideGrant(l.request, clock_.nowMs());
    if (!d.allowed || !sameTerms(d, l.grant())) revoked.push_back(token);
  }
  for (const auto& t : revoked) forget(t);
  out.revoked = revoked.size();
  audit("capd", "reload", {{"applied", "yes"}, {"source", policy_->source()},
                           {"devnet", policy_->devnetEnabled() ? "on" : "off"},
                           {"generation", std::to_string(generation_)},
                           {"revoked", std::to_string(revoked.size())}});
  kj::Promise<void> done = netd_.announce(policy_->announcement(generation_));
  if (!policy_->devnetEnabled()) {
    done = done.then([this]() { return netd_.revokeAll(); });
  } else {
    for (const auto& t : revoked) {
      done = done.then([this, t]() { return netd_.revoke(t); });
    }
  }
  return done.then([out]() { return out; });
}

kj::Promise<MintOutcome> Capd::mint(const GrantRequest& request) {
  auto policy = policy_;
  PolicyDecision d = policy->decideGrant(request, clock_.nowMs());
  std::string principal = principalName(*policy, request.subjectUid);
  std::string scope = scopeText(request);
  if (!d.allowed) {
    MintOutcome out;
    out.denial = d.denial;
    out.detail = d.reason;
    auditDenial("capd", request.callerUid, "deny", {{"principal", principal}, {"reason", enumName(d.denial)},
                           {"scope", scope}, {"rule", d.reason}});
    return out;
  }
  expire();
  if (grantsOf(request.subjectUid) >= policy->grantsPerPrincipal()) {
    MintOutcome out;
    out.denial = idl::GrantRefusal::TOO_MANY_GRANTS;
    out.detail = principal + " holds " + std::to_string(grantsOf(request.subjectUid)) +
                 " live grants (network.limits.grantsPerPrincipal)";
    auditDenial("capd", request.callerUid, "deny", {{"principal", principal}, {"reason", enumName(out.denial)}, {"scope", scope}});
    return out;
  }
  // The grant record itself (idl::Grant): what netd keeps and decides from.
  auto message = kj::heap<capnp::MallocMessageBuilder>(256);
  auto g = message->initRoot<idl::Grant>();
  const GrantToken token = tokens_();
  const uint64_t id = nextGrantId_++;
  const int64_t expiresAtMs = clock_.nowMs() + policy->grantLifetimeMs();
  g.setToken(kj::arrayPtr(token.data(), token.size()));
  g.setId(id);
  g.setSubjectUid(request.subjectUid);
  g.setHolderUid(request.callerUid);
  auto gs = g.initScope();
  gs.setScheme(request.scheme);
  gs.setHost(request.host);
  gs.setPort(request.port);
  g.setExpiresAtMs(expiresAtMs);
  fillTerms(d, g);
  if (d.ignoreValidityWarning) {
    audit("capd", "warn", {{"principal", principal}, {"scope", scope},
                           {"time-policy", "ignore-validity"}, {"detail", "certificate dates will not be checked"}});
  }
  // Registered first (netd must know the token before anyone can present it), then checked again:
  // a reload that ran while netd was answering may have withdrawn what this grant needs, and the
  // grant is returned only if the policy current now still allows it on the same terms.
  auto registering = netd_.registerGrant(g.asReader());
  return registering.then(
      [this, message = kj::mv(message), token, id, expiresAtMs, request, principal, scope, policy](
          bool registered) mutable -> kj::Promise<MintOutcome> {
        MintOutcome out;
        if (!registered) {
          out.denial = idl::GrantRefusal::NETD_UNREACHABLE;
          out.detail = "netd did not accept the grant (control channel down)";
          audit("capd", "deny", {{"principal", principal}, {"reason", "netd-unreachable"}, {"scope", scope}});
          return out;
        }
        if (policy_ != policy) {
          PolicyDecision now = policy_->decideGrant(request, clock_.nowMs());
          if (!now.allowed || !sameTerms(now, message->getRoot<idl::Grant>().asReader())) {
            out.denial = idl::GrantRefusal::POLICY_CHANGED;
            out.detail = "a reload during the mint withdrew it: " + (now.allowed ? std::string("its terms changed") : now.reason);
            audit("capd", "deny", {{"principal", principal}, {"reason", enumName(out.denial)},
                                   {"grant", grantName(id)}, {"scope", scope}});
            return netd_.revoke(token).then([out]() { return out; });
          }
        }
        expire();
        remember(kj::mv(message), request);
        out.granted = true;
        out.token = token;
        out.expiresAtMs = expiresAtMs;
        std::string holder = principalName(*policy_, request.callerUid);
        audit("capd", "mint", {{"principal", principal}, {"holder", holder}, {"scope", scope},
                               {"grant", grantName(id)}, {"expires-ms", std::to_string(expiresAtMs)}});
        return kj::Promise<MintOutcome>(out);
      });
}

void Capd::expireTickets() {
  const int64_t now = clock_.nowMs();
  while (!ticketsByExpiry_.empty() && ticketsByExpiry_.begin()->first <= now) {
    auto it = tickets_.find(ticketsByExpiry_.begin()->second);
    if (it != tickets_.end()) {
      auto s = ticketsPerSubject_.find(it->second.subject);
      if (s != ticketsPerSubject_.end() && --s->second == 0) ticketsPerSubject_.erase(s);
      tickets_.erase(it);
    }
    ticketsByExpiry_.erase(ticketsByExpiry_.begin());
  }
}

TicketOutcome Capd::issueTicket(uid_t subject, const std::string& delegate, const std::string& scheme,
                                const std::string& host, uint16_t port) {
  expireTickets();
  TicketOutcome out;
  std::string principal = principalName(*policy_, subject);
  std::string scope = scopeText(scheme, host, port);
  auto refuse = [&](idl::GrantRefusal d, std::string detail) {
    out.denial = d;
    out.detail = std::move(detail);
    auditDenial("capd", subject, "deny", {{"principal", principal}, {"reason", enumName(d)}, {"scope", scope},
                           {"action", "ticket"}, {"rule", out.detail}});
    return out;
  };
  if (scheme != "http" && scheme != "https") return refuse(idl::GrantRefusal::BAD_SCOPE, "tickets are for http and https");
  if (host.empty() || host.size() > 253 || port == 0) return refuse(idl::GrantRefusal::BAD_SCOPE, "host 1..253 bytes, port non-zero");
  const PrincipalInfo* d = policy_->principalByName(delegate);
  if (d == nullptr || !d->holds("net.grant.delegate")) {
    return refuse(idl::GrantRefusal::BAD_SCOPE, "delegate \"" + delegate + "\" is not a principal holding net.grant.delegate");
  }
  auto perSubject = ticketsPerSubject_.find(subject);
  if (perSubject != ticketsPerSubject_.end() && perSubject->second >= kTicketsPerPrincipal) {
    return refuse(idl::GrantRefusal::TOO_MANY_GRANTS, principal + " holds " + std::to_string(kTicketsPerPrincipal) + " unused tickets");
  }
  Ticket t{subject, d->uid, scheme, host, port, clock_.nowMs() + kTicketLifetimeMs, nextTicketId_++};
  out.ticket = tokens_();
  out.expiresAtMs = t.expiresAtMs;
  out.issued = true;
  audit("capd", "ticket", {{"principal", principal}, {"delegate", delegate}, {"scope", scope},
                           {"ticket", "t" + std::to_string(t.id)}, {"expires-ms", std::to_string(t.expiresAtMs)}});
  tickets_.emplace(out.ticket, std::move(t));
  ticketsByExpiry_.emplace(out.expiresAtMs, out.ticket);
  ++ticketsPerSubject_[subject];
  return out;
}

kj::Promise<MintOutcome> Capd::mintDelegated(uid_t delegate, std::span<const uint8_t> ticket, const std::string& scheme,
                                             const std::string& host, uint16_t port) {
  expireTickets();
  std::string scope = scopeText(scheme, host, port);
  auto refuse = [&](std::string why) {
    MintOutcome out;
    out.denial = idl::GrantRefusal::BAD_TICKET;
    out.detail = why;
    auditDenial("capd", delegate, "deny", {{"principal", principalName(*policy_, delegate)}, {"reason", "bad-ticket"},
                           {"scope", scope}, {"rule", why}});
    return kj::Promise<MintOutcome>(out);
  };
  if (ticket.size() != kGrantTokenBytes) return refuse("no ticket: a delegate acts only for a principal that asked");
  GrantToken key;
  std::copy(ticket.begin(), ticket.end(), key.begin());
  auto it = tickets_.find(key);
  if (it == tickets_.end()) return refuse("unknown, used or expired ticket");
  Ticket t = it->second;
  // One-shot: consumed now, whatever happens next.
  tickets_.erase(it);
  auto s = ticketsPerSubject_.find(t.subject);
  if (s != ticketsPerSubject_.end() && --s->second == 0) ticketsPerSubject_.erase(s);
  if (t.delegate != delegate) return refuse("the ticket names another delegate");
  if (t.scheme != scheme || t.host != host || t.port != port) {
    return refuse("the ticket is for " + t.scheme + "://" + t.host + ":" + std::to_string(t.port));
  }
  return mint(GrantRequest{delegate, t.subject, true, scheme, host, port});
}

kj::Promise<bool> Capd::revoke(uid_t caller, const GrantToken& token) {
  auto it = live_.find(token);
  if (it == live_.end() ||
      (it->second.grant().getHolderUid() != caller && it->second.grant().getSubjectUid() != caller)) {
    return false;
  }
  audit("capd", "revoke", {{"principal", principalName(*policy_, caller)}, {"grant", grantName(it->second.grant().getId())},
                           {"scope", scopeText(it->second.request)}, {"reason", "requested"}});
  forget(token);
  return netd_.revoke(token).then([]() { return true; });
}

kj::Promise<void> Capd::resync() {
  expire();
  kj::Promise<void> done = netd_.announce(policy_->announcement(generation_));
  if (!policy_->devnetEnabled()) return done.then([this]() { return netd_.revokeAll(); });
  for (const auto& [token, l] : live_) {
    done = done.then([this, copy = copyGrant(l.grant())]() mutable {
      return netd_.registerGrant(grantOf(*copy)).ignoreResult();
    });
  }
  return done;
}

kj::Maybe<capnp::Capability::Client> Capd::connectionFor(uid_t uid) {
  if (policy_->principalByUid(uid) == nullptr) {
    auditDenial("capd", uid, "refuse-connection", {{"reason", "not-a-principal"}, {"uid", std::to_string(uid)}});
    return nullptr;
  }
  return capnp::Capability::Client(brokerFor(uid));
}

idl::CapdService::Client Capd::brokerFor(uid_t uid) {
  return gated<idl::CapdService>(kj::heap<BrokerImpl>(*this, uid), kj::heap<PolicyAuthorizer>(*this, uid), "capd");
}

}  // namespace capnet

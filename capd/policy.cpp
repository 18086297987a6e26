#include "capd/policy.h"
#include "common/encoding.h"

#include <arpa/inet.h>

namespace capnet {
namespace {

// `rule` is the condition that failed, as the rule trace states it ("app holds net.tcp.connect:
// deny"); the reason says what was found ("no-cap (app lacks net.tcp.connect)") when `finding`
// is given.
PolicyDecision deny(PolicyDecision d, idl::GrantRefusal why, std::string rule, std::string finding = "") {
  d.allowed = false;
  d.denial = why;
  d.rules.push_back(rule + ": deny");
  d.reason = std::string(enumName(why)) + " (" + (finding.empty() ? rule : finding) + ")";
  return d;
}

}  // namespace


std::vector<std::string_view> capabilitiesForScheme(std::string_view scheme, bool hostIsName) {
  if (scheme == "tcp") {
    if (hostIsName) return {"net.tcp.connect", "net.dns.resolve"};
    return {"net.tcp.connect"};
  }
  if (scheme == "tls") {
    if (hostIsName) return {"net.tcp.connect", "net.tls.validate", "net.dns.resolve"};
    return {"net.tcp.connect", "net.tls.validate"};
  }
  if (scheme == "http") return {"net.http.devnet"};
  if (scheme == "https") return {"net.http.devnet", "net.tls.validate"};
  return {};
}

std::shared_ptr<const Policy> Policy::denyAll(std::string source, std::vector<std::string> problems) {
  auto p = std::shared_ptr<Policy>(new Policy());
  p->source_ = std::move(source);
  p->problems_ = std::move(problems);
  return p;
}

Announcement Policy::announcement(uint64_t generation) const {
  Announcement a;
  a.devnetEnabled = devnet_;
  a.generation = generation;
  a.limits = netLimits_;
  for (const auto& [uid, info] : byUid_) {
    PrincipalFacts f;
    f.uid = uid;
    f.capabilities.assign(info.capabilities.begin(), info.capabilities.end());
    a.principals.push_back(std::move(f));
  }
  return a;
}

std::shared_ptr<const Policy> Policy::fromConfig(std::shared_ptr<const ConfigDocument> config,
                                                 std::string source) {
  auto p = std::shared_ptr<Policy>(new Policy());
  p->source_ = std::move(source);
  auto net = config->root().getNetwork();
  p->devnet_ = net.getDevnet().getEnabled();
  p->lifetimeMs_ = net.getGrants().getLifetimeMs();
  auto limits = net.getLimits();
  p->netLimits_.connectionsPerUid = limits.getConnectionsPerUid();
  p->netLimits_.firstCallDeadlineMs = limits.getFirstCallDeadlineMs();
  p->netLimits_.streamsPerPrincipal = limits.getStreamsPerPrincipal();
  p->netLimits_.maxStreamMs = net.getGrants().getMaxStreamMs();
  p->grantsPerPrincipal_ = limits.getGrantsPerPrincipal();
  p->fetchesPerPrincipal_ = limits.getFetchesPerPrincipal();
  auto http = net.getHttp();
  p->http_.maxBodyBytes = http.getMaxBodyBytes();
  p->http_.maxHeaderBytes = http.getMaxHeaderBytes();
  p->http_.maxRedirects = http.getRedirects() == idl::RedirectPolicy::NONE ? 0 : http.getMaxRedirects();
  p->http_.totalMs = net.getTimeouts().getTotalMs();
  for (auto entry : net.getPrincipals()) {
    PrincipalInfo info;
    info.name = entry.getKey();
    info.uid = entry.getValue().getUid();
    for (auto c : entry.getValue().getCapabilities()) info.capabilities.insert(c.cStr());
    p->byName_.emplace(info.name, info.uid);
    p->byUid_.emplace(info.uid, std::move(info));
  }
  for (auto h : net.getHosts()) {
    uint32_t addr = 0;
    if (parseIpv4Dotted(h.getValue().cStr(), addr)) p->hosts_.emplace(h.getKey().cStr(), addr);
  }
  p->config_ = std::move(config);
  return p;
}

const PrincipalInfo* Policy::principalByUid(uid_t uid) const {
  auto it = byUid_.find(uid);
  return it == byUid_.end() ? nullptr : &it->second;
}

const PrincipalInfo* Policy::principalByName(std::string_view name) const {
  auto it = byName_.find(name);
  return it == byName_.end() ? nullptr : principalByUid(it->second);
}

bool Policy::holds(uid_t uid, std::string_view capability) const {
  auto* p = principalByUid(uid);
  return valid() && p != nullptr && p->holds(capability);
}

std::optional<uint32_t> Policy::resolve(std::string_view host) const {
  auto it = hosts_.find(host);
  if (it != hosts_.end()) return it->second;
  uint32_t literal = 0;
  if (parseIpv4Dotted(host, literal)) {
    for (const auto& [name, addr] : hosts_) {
      if (addr == literal) return literal;
    }
  }
  return std::nullopt;
}

PolicyDecision Policy::decideGrant(const GrantRequest& r, int64_t nowMs) const {
  PolicyDecision d;
  if (!valid()) return deny(std::move(d), idl::GrantRefusal::CONFIG_INVALID, "config is valid");
  d.rules.push_back("config is valid: ok");
  if (!devnet_) return deny(std::move(d), idl::GrantRefusal::DEVNET_OFF, "network.devnet.enabled");
  d.rules.push_back("network.devnet.enabled: ok");

  const PrincipalInfo* caller = principalByUid(r.callerUid);
  if (caller == nullptr) {
    return deny(std::move(d), idl::GrantRefusal::UNKNOWN_PRINCIPAL,
                "caller uid " + std::to_string(r.callerUid) + " is a principal");
  }
  d.rules.push_back("caller uid " + std::to_string(r.callerUid) + " is principal \"" + caller->name + "\": ok");

  const bool directScheme = r.scheme == "tcp" || r.scheme == "tls";
  const bool fetchScheme = r.scheme == "http" || r.scheme == "https";
  const PrincipalInfo* subject = caller;
  if (r.delegated) {
    if (!caller->holds("net.grant.delegate")) {
      return deny(std::move(d), idl::GrantRefusal::NO_CAP, caller->name + " holds net.grant.delegate",
                  caller->name + " lacks net.grant.delegate");
    }
    d.rules.push_back(caller->name + " holds net.grant.delegate: ok");
    subject = principalByUid(r.subjectUid);
    if (subject == nullptr) {
      return deny(std::move(d), idl::GrantRefusal::UNKNOWN_PRINCIPAL,
                  "subject uid " + std::to_string(r.subjectUid) + " is a principal");
    }
    d.rules.push_back("subject uid " + std::to_string(r.subjectUid) + " is principal \"" + subject->name + "\": ok");
    if (!fetchScheme) {
      return deny(std::move(d), idl::GrantRefusal::BAD_SCOPE, "delegated scheme \"" + r.scheme + "\" is http or https");
    }
  } else if (!directScheme) {
    return deny(std::move(d), idl::GrantRefusal::BAD_SCOPE, "direct scheme \"" + r.scheme + "\" is tcp or tls");
  }
  d.rules.push_back("scheme " + r.scheme + ": ok");

  uint32_t literal = 0;
  const bool isLiteral = parseIpv4Dotted(r.host, literal);
  // The host as the one URL parser reads it, already in its canonical form (fetchd's hosts are).
  auto canonical = parseHost(r.host);
  if (r.port == 0 || !canonical.ok() || canonical.value() != r.host) {
    std::string finding = r.port == 0 ? "port 0"
                          : !canonical.ok() ? canonical.message()
                                            : "host " + r.host + " is written " + canonical.value() + " in canonical form";
    return deny(std::move(d), idl::GrantRefusal::BAD_SCOPE, "scope host and port are well-formed", finding);
  }
  d.rules.push_back("scope " + r.scheme + "://" + r.host + ":" + std::to_string(r.port) + " well-formed: ok");

  for (auto cap : capabilitiesForScheme(r.scheme, !isLiteral)) {
    if (!subject->holds(cap)) {
      return deny(std::move(d), idl::GrantRefusal::NO_CAP, subject->name + " holds " + std::string(cap),
                  subject->name + " lacks " + std::string(cap));
    }
    d.rules.push_back(subject->name + " holds " + std::string(cap) + ": ok");
  }

  auto addr = resolve(r.host);
  if (!addr) return deny(std::move(d), idl::GrantRefusal::UNKNOWN_HOST, "network.hosts lists " + r.host);
  d.address = *addr;
  d.rules.push_back("network.hosts: " + r.host + " -> " + formatIpv4(*addr) + ": ok");

  auto net = config_->root().getNetwork();
  auto tls = net.getTls();
  if (tls.getCertTimePolicy() == idl::CertTimePolicy::IGNORE_VALIDITY) {
    // Honoured only while devnet is on, which it is at this point.
    d.tls.timePolicy = TimePolicy::kIgnoreValidity;
    d.ignoreValidityWarning = r.scheme == "tls" || r.scheme == "https";
    d.rules.push_back("network.tls.certTimePolicy: ignore-validity (devnet on; warned at every use)");
  } else {
    d.rules.push_back("network.tls.certTimePolicy: enforce");
  }
  // TLS policy is keyed by the destination, not by its spelling: an IPv4 literal gets the policy
  // of the names the hosts map gives that address (else pins and the TLS floor could be dodged by
  // writing the address instead of the name).
  std::vector<std::string> names;
  if (isLiteral) {
    for (const auto& [name, a] : hosts_) {
      if (a == literal) names.push_back(name);
    }
  } else {
    names.push_back(r.host);
  }
  auto listed = [](auto list, const std::string& name) {
    for (auto h : list) {
      if (name == h.cStr()) return true;
    }
    return false;
  };
  bool allow12 = tls.getMinVersion() == idl::TlsVersion::TLS12;
  if (!allow12 && !names.empty()) {
    allow12 = true;   // a literal may use TLS 1.2 only if every name of its address may.
    for (const auto& n : names) allow12 = allow12 && listed(tls.getAllowTls12(), n);
  }
  d.tls.minVersion = allow12 ? MinTlsVersion::kTls12 : MinTlsVersion::kTls13;
  bool havePins = false;
  std::string pinnedName;
  for (const auto& n : names) {
    for (auto pin : tls.getPins()) {
      if (n != pin.getKey().cStr()) continue;
      GrantTls pins;
      int64_t expires = 0;
      parseDate(pin.getValue().getExpires().cStr(), expires);
      pins.pinsExpireAtMs = expires;
      for (auto b64 : pin.getValue().getSpkiSha256()) {
        std::vector<uint8_t> bytes;
        if (decodeBase64(b64.cStr(), bytes) && bytes.size() == 32) {
          std::array<uint8_t, 32> digest{};
          std::copy(bytes.begin(), bytes.end(), digest.begin());
          pins.pins.push_back(digest);
        }
      }
      if (havePins && (pins.pins != d.tls.pins || pins.pinsExpireAtMs != d.tls.pinsExpireAtMs)) {
        return deny(std::move(d), idl::GrantRefusal::BAD_SCOPE,
                    r.host + " is the address of " + pinnedName + " and " + n + ", which pin different keys: use a name");
      }
      havePins = true;
      pinnedName = n;
      d.tls.pins = std::move(pins.pins);
      d.tls.pinsExpireAtMs = pins.pinsExpireAtMs;
      d.rules.push_back(std::string("network.tls.pins[") + n + "]: " + std::to_string(d.tls.pins.size()) + " pins" +
                        (nowMs >= expires ? " (expired: skipped at connect)" : ""));
    }
  }
  d.connectTimeoutMs = net.getTimeouts().getConnectMs();
  d.handshakeTimeoutMs = net.getTimeouts().getHandshakeMs();
  d.allowed = true;
  d.reason = "allowed";
  return d;
}

PolicyDecision Policy::decideCapability(uid_t uid, std::string_view capability) const {
  PolicyDecision d;
  if (!valid()) return deny(std::move(d), idl::GrantRefusal::CONFIG_INVALID, "config is valid");
  const PrincipalInfo* p = principalByUid(uid);
  if (p == nullptr) {
    return deny(std::move(d), idl::GrantRefusal::UNKNOWN_PRINCIPAL, "uid " + std::to_string(uid) + " is a principal");
  }
  d.rules.push_back("uid " + std::to_string(uid) + " is principal \"" + p->name + "\": ok");
  if (!p->holds(capability)) {
    return deny(std::move(d), idl::GrantRefusal::NO_CAP, p->name + " holds " + std::string(capability),
                p->name + " lacks " + std::string(capability));
  }
  d.rules.push_back(p->name + " holds " + std::string(capability) + ": ok");
  d.allowed = true;
  d.reason = "allowed";
  return d;
}

std::string Policy::summary() const {
  if (!valid()) {
    return "config invalid (" + std::to_string(problems_.size()) + " problems): " + source_ + "; denying everything";
  }
  return "config ok: " + source_ + ": devnet=" + (devnet_ ? "on" : "off") +
         " principals=" + std::to_string(byUid_.size()) + " hosts=" + std::to_string(hosts_.size()) +
         " grant-lifetime-ms=" + std::to_string(lifetimeMs_);
}

}  // namespace capnet

#include "capd/grant-registry.h"

#include <algorithm>
#include <cstring>

namespace capnet {
namespace {

// Revoked tokens remembered so a refusal can say "revoked"; older ones become "no-cap".
constexpr size_t kMaxRememberedRevocations = 4096;

bool toToken(std::span<const uint8_t> bytes, GrantToken& out) {
  if (bytes.size() != kGrantTokenBytes) return false;
  std::memcpy(out.data(), bytes.data(), kGrantTokenBytes);
  return true;
}

}  // namespace

std::string grantName(const GrantRecord& g) { return "g" + std::to_string(g.id); }

std::string_view grantDecisionReason(GrantDecision d) {
  switch (d) {
    case GrantDecision::kNoCap: return "no-cap";
    case GrantDecision::kExpired: return "expired";
    case GrantDecision::kRevoked: return "revoked";
    case GrantDecision::kWrongUid: return "wrong-uid";
    case GrantDecision::kOutOfScope: return "out-of-scope";
    case GrantDecision::kAllowed: return "allowed";
  }
  return "no-cap";
}

size_t GrantTokenHash::operator()(const GrantToken& t) const {
  // Tokens are uniformly random: their first 8 bytes are already a good hash.
  uint64_t h;
  std::memcpy(&h, t.data(), sizeof(h));
  return static_cast<size_t>(h);
}

GrantRegistry::GrantRegistry(const Clock& clock) : clock_(clock) {}

void GrantRegistry::add(GrantRecord grant) {
  GrantToken token = grant.token;
  grants_.insert_or_assign(token, std::move(grant));
}

const GrantRecord* GrantRegistry::find(const GrantToken& token) const {
  auto it = grants_.find(token);
  return it == grants_.end() ? nullptr : &it->second;
}

bool GrantRegistry::revoke(std::span<const uint8_t> bytes) {
  GrantToken token;
  if (!toToken(bytes, token)) return false;
  auto it = grants_.find(token);
  if (it == grants_.end()) return false;
  grants_.erase(it);
  if (revoked_.insert(token).second) {
    revokedOrder_.push_back(token);
    if (revokedOrder_.size() > kMaxRememberedRevocations) {
      revoked_.erase(revokedOrder_.front());
      revokedOrder_.erase(revokedOrder_.begin());
    }
  }
  return true;
}

size_t GrantRegistry::revokeAll() {
  std::vector<GrantToken> tokens;
  tokens.reserve(grants_.size());
  for (const auto& [token, grant] : grants_) tokens.push_back(token);
  for (const auto& t : tokens) revoke(t);
  return tokens.size();
}

GrantCheck GrantRegistry::check(std::span<const uint8_t> bytes, uid_t presenterUid, bool tls,
                                std::string_view host, uint16_t port) const {
  GrantCheck result;   // kNoCap
  GrantToken token;
  if (!toToken(bytes, token)) return result;
  auto it = grants_.find(token);
  if (it == grants_.end()) {
    if (revoked_.count(token)) result.decision = GrantDecision::kRevoked;
    return result;
  }
  const GrantRecord& g = it->second;
  if (clock_.nowMs() >= g.expiresAtMs) {
    result.decision = GrantDecision::kExpired;
    return result;
  }
  if (g.holderUid != presenterUid) {
    result.decision = GrantDecision::kWrongUid;
    return result;
  }
  const bool schemeIsTls = g.scheme == "tls" || g.scheme == "https";
  const bool schemeKnown = schemeIsTls || g.scheme == "tcp" || g.scheme == "http";
  if (!schemeKnown || schemeIsTls != tls || g.host != host || g.port != port) {
    result.decision = GrantDecision::kOutOfScope;
    return result;
  }
  result.decision = GrantDecision::kAllowed;
  result.grant = &g;
  return result;
}

size_t GrantRegistry::sweep() {
  const int64_t now = clock_.nowMs();
  size_t n = 0;
  for (auto it = grants_.begin(); it != grants_.end();) {
    if (now >= it->second.expiresAtMs) {
      it = grants_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

}  // namespace capnet

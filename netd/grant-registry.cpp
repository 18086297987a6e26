#include "netd/grant-registry.h"

#include <vector>

namespace capnet {
namespace {

// Revoked tokens remembered so a refusal can say cap-revoked; older ones become no-cap.
constexpr size_t kMaxRememberedRevocations = 4096;

idl::Grant::Reader readerOf(const capnp::MallocMessageBuilder& m) { return grantOf(m); }

}  // namespace


GrantRegistry::GrantRegistry(const Clock& clock) : clock_(clock) {}

void GrantRegistry::add(idl::Grant::Reader grant) {
  GrantToken token;
  if (!toGrantToken(grant.getToken(), token)) return;
  byExpiry_.emplace(grant.getExpiresAtMs(), token);
  grants_.insert_or_assign(token, copyGrant(grant));
}

kj::Maybe<idl::Grant::Reader> GrantRegistry::find(const GrantToken& token) const {
  auto it = grants_.find(token);
  if (it == grants_.end()) return nullptr;
  return readerOf(*it->second);
}

bool GrantRegistry::revoke(std::span<const uint8_t> bytes) {
  GrantToken token;
  if (!toGrantToken(kj::arrayPtr(bytes.data(), bytes.size()), token)) return false;
  auto it = grants_.find(token);
  if (it == grants_.end()) return false;
  grants_.erase(it);
  if (revoked_.insert(token).second) {
    revokedOrder_.push_back(token);
    if (revokedOrder_.size() > kMaxRememberedRevocations) {
      revoked_.erase(revokedOrder_.front());
      revokedOrder_.pop_front();
    }
  }
  return true;
}

size_t GrantRegistry::revokeAll() {
  std::vector<GrantToken> tokens;
  tokens.reserve(grants_.size());
  for (const auto& [token, grant] : grants_) tokens.push_back(token);
  for (const auto& t : tokens) revoke(t);
  byExpiry_.clear();
  return tokens.size();
}

GrantCheck GrantRegistry::check(std::span<const uint8_t> bytes, uid_t presenterUid, bool tls, std::string_view host,
                                uint16_t port) const {
  GrantCheck result;   // refused, noCap
  GrantToken token;
  if (!toGrantToken(kj::arrayPtr(bytes.data(), bytes.size()), token)) return result;
  auto it = grants_.find(token);
  if (it == grants_.end()) {
    if (revoked_.count(token)) result.refusal = idl::ConnectRefusal::CAP_REVOKED;
    return result;
  }
  idl::Grant::Reader g = readerOf(*it->second);
  if (clock_.nowMs() >= g.getExpiresAtMs()) {
    result.refusal = idl::ConnectRefusal::CAP_EXPIRED;
    return result;
  }
  if (g.getHolderUid() != presenterUid) {
    result.refusal = idl::ConnectRefusal::WRONG_UID;
    return result;
  }
  auto scope = g.getScope();
  std::string_view scheme(scope.getScheme().cStr(), scope.getScheme().size());
  const bool schemeIsTls = scheme == "tls" || scheme == "https";
  const bool schemeKnown = schemeIsTls || scheme == "tcp" || scheme == "http";
  if (!schemeKnown || schemeIsTls != tls || std::string_view(scope.getHost().cStr(), scope.getHost().size()) != host ||
      scope.getPort() != port) {
    result.refusal = idl::ConnectRefusal::OUT_OF_SCOPE;
    return result;
  }
  result.allowedFlag = true;
  result.grant = g;
  return result;
}

size_t GrantRegistry::sweep() {
  const int64_t now = clock_.nowMs();
  size_t n = 0;
  while (!byExpiry_.empty() && byExpiry_.begin()->first <= now) {
    auto it = grants_.find(byExpiry_.begin()->second);
    // The same token may have been re-registered with a later expiry: only drop it when due.
    if (it != grants_.end() && readerOf(*it->second).getExpiresAtMs() <= now) {
      grants_.erase(it);
      ++n;
    }
    byExpiry_.erase(byExpiry_.begin());
  }
  return n;
}

}  // namespace capnet

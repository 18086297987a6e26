// The vocabulary of a grant (idl/cap.capnp Grant, the one grant record capd mints and netd
// keeps): its token and the name audit lines use for it.
#pragma once

#include <capnp/message.h>
#include <kj/common.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>

#include "idl/cap.capnp.h"

namespace capnet {

inline constexpr size_t kGrantTokenBytes = 16;   // 128 bits from getrandom(2).
using GrantToken = std::array<uint8_t, kGrantTokenBytes>;

struct GrantTokenHash {
  // Tokens are uniformly random: their first 8 bytes are already a good hash.
  size_t operator()(const GrantToken& t) const {
    uint64_t h;
    std::memcpy(&h, t.data(), sizeof(h));
    return static_cast<size_t>(h);
  }
};

// The token in `bytes`, when they are exactly a token's size.
inline bool toGrantToken(kj::ArrayPtr<const kj::byte> bytes, GrantToken& out) {
  if (bytes.size() != kGrantTokenBytes) return false;
  std::memcpy(out.data(), bytes.begin(), kGrantTokenBytes);
  return true;
}

// The token of a grant record (zeros when the record's token is malformed; netd refuses such a
// grant at registration and capd never mints one).
inline GrantToken grantToken(idl::Grant::Reader g) {
  GrantToken t{};
  toGrantToken(g.getToken(), t);
  return t;
}

// How audit lines name a grant: "g<id>" (capd's serial); the token never appears in a log.
inline std::string grantName(uint64_t id) { return "g" + std::to_string(id); }

// An owned copy of a grant record, for work that outlives the message it came in.
inline kj::Own<capnp::MallocMessageBuilder> copyGrant(idl::Grant::Reader grant) {
  auto m = kj::heap<capnp::MallocMessageBuilder>(256);
  m->setRoot(grant);
  return m;
}

// The grant record a message holds (a message made by copyGrant or filled with idl::Grant).
inline idl::Grant::Reader grantOf(const capnp::MallocMessageBuilder& m) {
  // getRoot only reads here: the root exists (it was set or initialised when the message was made).
  return const_cast<capnp::MallocMessageBuilder&>(m).getRoot<idl::Grant>().asReader();
}

}  // namespace capnet

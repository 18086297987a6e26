// How a closed ByteStream reports why (netd closes streams; fetchd and clients read the reason).
#pragma once

#include <kj/exception.h>

#include <string_view>

#include "idl/names.h"
#include "idl/net.capnp.h"

namespace capnet {

// A ByteStream call on a stream netd has closed fails with a DISCONNECTED exception whose
// description starts with this prefix and then names the reason: "capnet.stream-closed
// reason=devnet-off ..." (a ConnectRefusal name, or "closed" when the holder closed it).
inline constexpr std::string_view kStreamClosedPrefix = "capnet.stream-closed reason=";

// The ConnectRefusal a ByteStream failure carries, if it is one of netd's typed closures.
inline kj::Maybe<idl::ConnectRefusal> streamClosedReason(const kj::Exception& e) {
  std::string_view d(e.getDescription().cStr());
  auto at = d.find(kStreamClosedPrefix);
  if (at == std::string_view::npos) return nullptr;
  d = d.substr(at + kStreamClosedPrefix.size());
  d = d.substr(0, d.find(' '));
  idl::ConnectRefusal r;
  if (enumFromName(d, r)) return r;
  return nullptr;
}

}  // namespace capnet

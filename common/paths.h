// The OS's two roots: `pkg://` (read-only content shipped in the image, /pkg in the guest) and
// `state:/` (the persistent disk, /state in the guest). Injected so host tests run in a
// temporary directory.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace capnet {

struct Roots {
  std::string pkg = "/pkg";
  std::string state = "/state";

  // "pkg://trust/a.pem" -> "<pkg>/trust/a.pem"; "state:/trust/installed/" -> "<state>/trust/installed/".
  // nullopt for any other scheme or for a path that tries to leave its root ("..").
  std::optional<std::string> resolve(std::string_view uri) const;
};

}  // namespace capnet

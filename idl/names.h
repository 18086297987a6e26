// The one spelling of every enum value capnet prints — refusal reasons above all — in audit lines,
// CLI output, selftest reports and the docs: the .capnp enumerant's name in kebab case
// (`devnetOff` -> "devnet-off", `tlsUntrustedIssuer` -> "tls-untrusted-issuer"), read from the
// schema compiled into the binary. The .capnp file is the single source; there are no hand-written
// name tables and no mirror enums.
#pragma once

#include <capnp/schema.h>
#include <kj/string.h>

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace capnet {

// "devnetOff" -> "devnet-off"
inline std::string kebabCase(std::string_view camel) {
  std::string out;
  for (char c : camel) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      if (!out.empty()) out.push_back('-');
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// The spelling of `value`; "unknown" for a value this binary's schema does not have (a newer peer).
template <typename E>
std::string_view enumName(E value) {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (auto e : capnp::Schema::from<E>().getEnumerants()) n.push_back(kebabCase(e.getProto().getName().cStr()));
    return n;
  }();
  auto i = static_cast<size_t>(value);
  return i < names.size() ? std::string_view(names[i]) : std::string_view("unknown");
}

// The value spelled `name`, if any (the inverse, for parsing what another component printed).
template <typename E>
bool enumFromName(std::string_view name, E& out) {
  auto enumerants = capnp::Schema::from<E>().getEnumerants();
  for (size_t i = 0; i < enumerants.size(); ++i) {
    if (enumName(static_cast<E>(i)) == name) {
      out = static_cast<E>(i);
      return true;
    }
  }
  return false;
}

}  // namespace capnet

// The capd config loader: JSON from a policy author (or an attacker who can write the state disk).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "capd/config.h"
#include "capd/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = capnet::parseConfig(std::string_view(reinterpret_cast<const char*>(data), size));
  if (auto* doc = std::get_if<std::shared_ptr<const capnet::ConfigDocument>>(&parsed)) {
    auto policy = capnet::Policy::fromConfig(*doc, "fuzz");
    (void)policy->summary();
    (void)policy->announcement(1);
    for (const char* scheme : {"tcp", "tls", "http", "https"}) {
      for (const char* host : {"devnet.test", "10.0.2.100", "x"}) {
        (void)policy->decideGrant(capnet::GrantRequest{1100, 1100, false, scheme, host, 443}, 0);
      }
    }
  }
  return 0;
}

// The policy config: JSON text -> validated, immutable Policy input.
//
// Decoding is schema-driven: the JSON is parsed by capnp::JsonCodec, then walked against
// idl/config.capnp's reflection (honouring $jsonMap, $format, $range and $Json.name) so that every
// problem is reported with its JSON path, all at once; only a config with no problem is decoded
// into a capnp message by JsonCodec. JsonCodec's own decode errors carry no path, which is why the
// walk comes first.
#pragma once

#include "common/url.h"

#include <capnp/message.h>

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"
#include "idl/config.capnp.h"

namespace capnet {

// Whether `name` is in idl/config.capnp's knownCapabilities (the one list of grantable
// capabilities, shared with the JSON Schema).
bool isKnownCapability(std::string_view name);

// Largest config file capd will read.
inline constexpr size_t kMaxConfigBytes = 1 << 20;

enum class ConfigError : uint8_t {
  kInvalid = 0,    // one or more problems; see problems.
  kUnreadable,     // the file could not be read (missing, too large, not a regular file).
};

struct ConfigProblems {
  ConfigError code = ConfigError::kInvalid;
  std::vector<std::string> problems;   // each "json.path: what is wrong".
};

// A decoded, validated config. Immutable once built; shared by the policy snapshots.
class ConfigDocument {
 public:
  explicit ConfigDocument(kj::Own<capnp::MallocMessageBuilder> message);
  idl::Config::Reader root() const;

 private:
  kj::Own<capnp::MallocMessageBuilder> message_;
  idl::Config::Reader root_;
};

// Parses and validates JSON text. On failure, every problem found, each with its JSON path.
std::variant<std::shared_ptr<const ConfigDocument>, ConfigProblems> parseConfig(std::string_view json);

// Reads a file (at most kMaxConfigBytes) and parses it.
std::variant<std::shared_ptr<const ConfigDocument>, ConfigProblems> loadConfigFile(const std::string& path);

// Semantic helpers shared with the policy.
// A host or principal name: letters, digits, '-', '_', dot-separated. IPv4 addresses:
// parseIpv4Dotted (common/url.h).
bool isHostname(std::string_view text);
// A host name the URL parser (common/url.h) reads as this same name: what the hosts map, pins and
// TLS exceptions must be ("127.1" is an IPv4 address to a URL, "xn--zz" is refused).
bool isUrlHost(std::string_view text);

}  // namespace capnet

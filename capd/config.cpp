#include "capd/config.h"

#include <kj/encoding.h>

#include "common/encoding.h"
#include "common/file.h"

#include "common/url.h"

#include <capnp/compat/json.h>
#include <capnp/schema.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <map>
#include <set>

#include <kj/exception.h>
#include <kj/io.h>

namespace capnet {
namespace {

// Annotation ids declared in idl/config.capnp and /capnp/compat/json.capnp.
constexpr uint64_t kJsonMapAnnotation = 0x86567fb7c10e3f60ull;
constexpr uint64_t kFormatAnnotation = 0xda676075c6ea2d72ull;
constexpr uint64_t kRangeAnnotation = 0x9a4a1f95c9d72ce0ull;
constexpr uint64_t kJsonNameAnnotation = 0xfa5b1fd61c2e7c3dull;

constexpr unsigned kMaxNesting = 32;

using capnp::JsonValue;
using capnp::StructSchema;
using capnp::Type;
using AnnotationList = capnp::List<capnp::schema::Annotation>::Reader;

std::string quoteKey(std::string_view key) {
  std::string out = "[\"";
  for (char c : key) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u >= 0x7f) {
      out += "\\x";
      out += kj::encodeHex(kj::arrayPtr(&u, 1)).cStr();
    } else {
      out.push_back(c);
    }
  }
  out += "\"]";
  return out;
}

kj::Maybe<capnp::schema::Value::Reader> findAnnotation(AnnotationList list, uint64_t id) {
  for (auto a : list) {
    if (a.getId() == id) return a.getValue();
  }
  return nullptr;
}

std::string jsonFieldName(StructSchema::Field field) {
  KJ_IF_MAYBE(v, findAnnotation(field.getProto().getAnnotations(), kJsonNameAnnotation)) {
    return v->getText();
  }
  return field.getProto().getName();
}

std::string enumJsonName(capnp::EnumSchema::Enumerant e) {
  KJ_IF_MAYBE(v, findAnnotation(e.getProto().getAnnotations(), kJsonNameAnnotation)) {
    return v->getText();
  }
  return e.getProto().getName();
}

struct FieldMeta {
  bool jsonMap = false;
  std::string format;
  bool hasRange = false;
  int64_t min = 0;
  int64_t max = 0;
};

FieldMeta metaOf(AnnotationList annotations) {
  FieldMeta m;
  if (findAnnotation(annotations, kJsonMapAnnotation) != nullptr) m.jsonMap = true;
  KJ_IF_MAYBE(v, findAnnotation(annotations, kFormatAnnotation)) { m.format = v->getText(); }
  KJ_IF_MAYBE(v, findAnnotation(annotations, kRangeAnnotation)) {
    auto s = v->getStruct().getAs<idl::Range>();
    m.hasRange = true;
    m.min = s.getMin();
    m.max = s.getMax();
  }
  return m;
}

const char* jsonKind(JsonValue::Reader v) {
  switch (v.which()) {
    case JsonValue::NULL_: return "null";
    case JsonValue::BOOLEAN: return "a boolean";
    case JsonValue::NUMBER: return "a number";
    case JsonValue::STRING: return "a string";
    case JsonValue::ARRAY: return "an array";
    case JsonValue::OBJECT: return "an object";
    case JsonValue::CALL: return "a call";
  }
  return "an unknown value";
}

// Walks the parsed JSON against the schema, collecting every problem with its path, and writes a
// transformed copy ($jsonMap objects become [{key, value}] arrays) that JsonCodec then decodes.
class Walker {
 public:
  std::vector<std::string> problems;

  void problem(const std::string& path, const std::string& what) {
    problems.push_back(path + ": " + what);
  }

  void walkStruct(StructSchema schema, JsonValue::Reader in, JsonValue::Builder out,
                  const std::string& path, unsigned depth) {
    if (in.which() != JsonValue::OBJECT) {
      problem(path, std::string("expected an object, found ") + jsonKind(in));
      out.setNull();
      return;
    }
    std::map<std::string, StructSchema::Field> byName;
    for (auto f : schema.getFields()) byName.emplace(jsonFieldName(f), f);
    auto fieldsIn = in.getObject();
    auto fieldsOut = out.initObject(fieldsIn.size());
    std::set<std::string> seen;
    for (unsigned i = 0; i < fieldsIn.size(); ++i) {
      auto f = fieldsIn[i];
      std::string name = f.getName();
      std::string fieldPath = path.empty() ? name : path + "." + name;
      fieldsOut[i].setName(f.getName());
      auto valueOut = fieldsOut[i].initValue();
      if (!seen.insert(name).second) {
        problem(fieldPath, "duplicate field");
        valueOut.setNull();
        continue;
      }
      auto it = byName.find(name);
      if (it == byName.end()) {
        problem(fieldPath, "unknown field");
        valueOut.setNull();
        continue;
      }
      walkValue(it->second.getType(), metaOf(it->second.getProto().getAnnotations()), f.getValue(),
                valueOut, fieldPath, depth + 1);
    }
  }

  void walkValue(Type type, const FieldMeta& meta, JsonValue::Reader in, JsonValue::Builder out,
                 const std::string& path, unsigned depth) {
    if (depth > kMaxNesting) {
      problem(path, "nested too deeply");
      out.setNull();
      return;
    }
    if (meta.jsonMap) {
      walkMap(type, in, out, path, depth);
      return;
    }
    switch (type.which()) {
      case capnp::schema::Type::BOOL:
        if (in.which() != JsonValue::BOOLEAN) {
          problem(path, std::string("expected true or false, found ") + jsonKind(in));
          out.setNull();
        } else {
          out.setBoolean(in.getBoolean());
        }
        return;
      case capnp::schema::Type::INT8:
      case capnp::schema::Type::INT16:
      case capnp::schema::Type::INT32:
      case capnp::schema::Type::INT64:
      case capnp::schema::Type::UINT8:
      case capnp::schema::Type::UINT16:
      case capnp::schema::Type::UINT32:
      case capnp::schema::Type::UINT64:
        walkInteger(type, meta, in, out, path);
        return;
      case capnp::schema::Type::TEXT:
        if (in.which() != JsonValue::STRING) {
          problem(path, std::string("expected a string, found ") + jsonKind(in));
          out.setNull();
        } else {
          checkFormat(meta.format, std::string_view(in.getString().cStr(), in.getString().size()), path);
          out.setString(in.getString());
        }
        return;
      case capnp::schema::Type::ENUM: {
        auto schema = type.asEnum();
        if (in.which() != JsonValue::STRING) {
          problem(path, std::string("expected a string, found ") + jsonKind(in));
          out.setNull();
          return;
        }
        std::string allowed;
        for (auto e : schema.getEnumerants()) {
          auto name = enumJsonName(e);
          if (name == in.getString().cStr()) {
            // JsonCodec (with handleByAnnotation) accepts the $Json.name spelling.
            out.setString(in.getString());
            return;
          }
          allowed += (allowed.empty() ? "\"" : ", \"") + name + "\"";
        }
        problem(path, "\"" + std::string(in.getString().cStr()) + "\" is not one of " + allowed);
        out.setNull();
        return;
      }
      case capnp::schema::Type::LIST: {
        if (in.which() != JsonValue::ARRAY) {
          problem(path, std::string("expected an array, found ") + jsonKind(in));
          out.setNull();
          return;
        }
        auto elems = in.getArray();
        auto elemsOut = out.initArray(elems.size());
        auto elementType = type.asList().getElementType();
        for (unsigned i = 0; i < elems.size(); ++i) {
          walkValue(elementType, meta, elems[i], elemsOut[i], path + "[" + std::to_string(i) + "]",
                    depth + 1);
        }
        return;
      }
      case capnp::schema::Type::STRUCT:
        walkStruct(type.asStruct(), in, out, path, depth);
        return;
      default:
        problem(path, "field type not supported in configs");
        out.setNull();
        return;
    }
  }

 private:
  void walkMap(Type type, JsonValue::Reader in, JsonValue::Builder out, const std::string& path,
               unsigned depth) {
    // $jsonMap: List(Entry{key :Text, value :T}) written as {"key": value, ...}.
    if (type.which() != capnp::schema::Type::LIST ||
        type.asList().getElementType().which() != capnp::schema::Type::STRUCT) {
      problem(path, "schema error: $jsonMap on a field that is not List(Entry)");
      out.setNull();
      return;
    }
    auto entry = type.asList().getElementType().asStruct();
    KJ_IF_MAYBE(keyField, entry.findFieldByName("key")) {
      KJ_IF_MAYBE(valueField, entry.findFieldByName("value")) {
        if (in.which() != JsonValue::OBJECT) {
          problem(path, std::string("expected an object, found ") + jsonKind(in));
          out.setNull();
          return;
        }
        auto keyMeta = metaOf(keyField->getProto().getAnnotations());
        auto valueMeta = metaOf(valueField->getProto().getAnnotations());
        auto items = in.getObject();
        auto arr = out.initArray(items.size());
        std::set<std::string> seen;
        for (unsigned i = 0; i < items.size(); ++i) {
          std::string key = items[i].getName();
          std::string itemPath = path + quoteKey(key);
          if (!seen.insert(key).second) problem(itemPath, "duplicate key");
          if (key.empty()) {
            problem(itemPath, "empty name");
          } else {
            checkFormat(keyMeta.format, key, itemPath);
          }
          auto obj = arr[i].initObject(2);
          obj[0].setName("key");
          obj[0].initValue().setString(key);
          obj[1].setName("value");
          walkValue(valueField->getType(), valueMeta, items[i].getValue(), obj[1].initValue(),
                    itemPath, depth + 1);
        }
        return;
      }
    }
    problem(path, "schema error: $jsonMap entry lacks key/value");
    out.setNull();
  }

  void walkInteger(Type type, const FieldMeta& meta, JsonValue::Reader in, JsonValue::Builder out,
                   const std::string& path) {
    if (in.which() != JsonValue::NUMBER) {
      problem(path, std::string("expected an integer, found ") + jsonKind(in));
      out.setNull();
      return;
    }
    double d = in.getNumber();
    // JSON numbers are doubles; configs never need integers beyond 2^53.
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9007199254740992.0) {
      problem(path, "expected an integer, found " + std::to_string(d));
      out.setNull();
      return;
    }
    int64_t v = static_cast<int64_t>(d);
    int64_t lo = 0, hi = 0;
    switch (type.which()) {
      case capnp::schema::Type::INT8: lo = INT8_MIN; hi = INT8_MAX; break;
      case capnp::schema::Type::INT16: lo = INT16_MIN; hi = INT16_MAX; break;
      case capnp::schema::Type::INT32: lo = INT32_MIN; hi = INT32_MAX; break;
      case capnp::schema::Type::UINT8: lo = 0; hi = UINT8_MAX; break;
      case capnp::schema::Type::UINT16: lo = 0; hi = UINT16_MAX; break;
      case capnp::schema::Type::UINT32: lo = 0; hi = UINT32_MAX; break;
      default: lo = -9007199254740992LL; hi = 9007199254740992LL; break;
    }
    if (type.which() == capnp::schema::Type::UINT64) lo = 0;
    if (meta.hasRange) {
      lo = std::max(lo, meta.min);
      hi = std::min(hi, meta.max);
    }
    if (v < lo || v > hi) {
      problem(path, std::to_string(v) + " is out of range " + std::to_string(lo) + ".." +
                        std::to_string(hi));
      out.setNull();
      return;
    }
    out.setNumber(d);
  }

  void checkFormat(const std::string& format, std::string_view text, const std::string& path) {
    if (format.empty()) return;
    if (format == "ipv4") {
      uint32_t ignored;
      if (!parseIpv4Dotted(text, ignored)) problem(path, "not an IPv4 address");
    } else if (format == "hostname") {
      if (!isHostname(text)) {
        problem(path, "not a host or principal name (letters, digits, '-', '.', '_')");
      } else if (path.rfind("network.principals", 0) != 0 && !isUrlHost(text)) {
        // Host names (the hosts map, TLS pins and exceptions) must be what the URL parser reads
        // from a URL naming them: never an IPv4 address in another spelling, never bad punycode.
        auto h = parseHost(text);
        problem(path, h.ok() ? "a URL naming it reaches " + h.value() + ", not this name" : "not a host name a URL can name (" + h.message() + ")");
      }
    } else if (format == "date") {
      int64_t ignored;
      if (!parseDate(text, ignored)) problem(path, "not a date (YYYY-MM-DD)");
    } else if (format == "capability") {
      if (!isKnownCapability(text)) problem(path, "unknown capability \"" + std::string(text) + "\"");
    } else {
      problem(path, "schema error: unknown format " + format);
    }
  }
};


void semanticChecks(idl::Config::Reader config, std::vector<std::string>& problems) {
  auto net = config.getNetwork();
  std::map<uint32_t, std::string> uids;
  for (auto p : net.getPrincipals()) {
    std::string path = "network.principals" + quoteKey(p.getKey().cStr());
    if (p.getValue().getUid() == 0) {
      problems.push_back(path + ".uid: required (a uid from 1 to 4294967294)");
      continue;
    }
    auto [it, inserted] = uids.emplace(p.getValue().getUid(), p.getKey());
    if (!inserted) {
      problems.push_back(path + ".uid: uid " + std::to_string(p.getValue().getUid()) +
                         " is already principal \"" + it->second + "\"");
    }
    std::set<std::string> caps;
    unsigned i = 0;
    for (auto c : p.getValue().getCapabilities()) {
      if (!caps.insert(c.cStr()).second) {
        problems.push_back(path + ".capabilities[" + std::to_string(i) + "]: duplicate capability \"" +
                           std::string(c.cStr()) + "\"");
      }
      ++i;
    }
  }
  std::set<std::string> hosts;
  for (auto h : net.getHosts()) hosts.insert(h.getKey());
  auto tls = net.getTls();
  unsigned i = 0;
  for (auto h : tls.getAllowTls12()) {
    if (!hosts.count(h.cStr())) {
      problems.push_back("network.tls.allowTls12[" + std::to_string(i) + "]: host \"" +
                         std::string(h.cStr()) + "\" is not in network.hosts");
    }
    ++i;
  }
  for (auto pin : tls.getPins()) {
    std::string path = "network.tls.pins" + quoteKey(pin.getKey().cStr());
    if (!hosts.count(pin.getKey().cStr())) {
      problems.push_back(path + ": host is not in network.hosts");
    }
    auto set = pin.getValue();
    if (set.getSpkiSha256().size() < 2) {
      problems.push_back(path + ".spkiSha256: at least two pins are required (the live key and a backup)");
    }
    std::set<std::string> seen;
    unsigned j = 0;
    for (auto b64 : set.getSpkiSha256()) {
      std::vector<uint8_t> bytes;
      std::string p = path + ".spkiSha256[" + std::to_string(j++) + "]";
      if (!decodeBase64(b64.cStr(), bytes) || bytes.size() != 32) {
        problems.push_back(p + ": not a base64 SHA-256 digest (32 bytes)");
      } else if (!seen.insert(std::string(b64.cStr())).second) {
        problems.push_back(p + ": duplicate pin (a backup pin must be a different key)");
      }
    }
    if (!set.hasExpires()) problems.push_back(path + ".expires: required (YYYY-MM-DD)");
  }
}

}  // namespace

bool isKnownCapability(std::string_view name) {
  for (auto c : *idl::KNOWN_CAPABILITIES) {
    if (name == std::string_view(c.cStr(), c.size())) return true;
  }
  return false;
}

bool isHostname(std::string_view text) {
  if (text.empty() || text.size() > 253) return false;
  if (text.front() == '.' || text.back() == '.' || text.front() == '-') return false;
  size_t label = 0;
  for (char c : text) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return true;
}

bool isUrlHost(std::string_view text) {
  // The one URL parser reads it as this same name (not as an IPv4 address, not refused: "127.1"
  // or "xn--zz" would never match a URL's host).
  auto h = parseHost(text);
  return h.ok() && h.value().size() == text.size() &&
         std::equal(text.begin(), text.end(), h.value().begin(),
                    [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
}



ConfigDocument::ConfigDocument(kj::Own<capnp::MallocMessageBuilder> message)
    : message_(kj::mv(message)), root_(message_->getRoot<idl::Config>().asReader()) {}

idl::Config::Reader ConfigDocument::root() const { return root_; }

std::variant<std::shared_ptr<const ConfigDocument>, ConfigProblems> parseConfig(std::string_view json) {
  ConfigProblems failure;
  if (json.size() > kMaxConfigBytes) {
    failure.problems.push_back("(file): larger than " + std::to_string(kMaxConfigBytes) + " bytes");
    return failure;
  }
  capnp::JsonCodec codec;
  codec.setMaxNestingDepth(kMaxNesting * 2);
  codec.setRejectUnknownFields(true);
  codec.handleByAnnotation<idl::Config>();

  capnp::MallocMessageBuilder raw;
  auto parsed = raw.initRoot<JsonValue>();
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                codec.decodeRaw(kj::ArrayPtr<const char>(json.data(), json.size()), parsed);
              })) {
    failure.problems.push_back(std::string("(file): not valid JSON: ") + e->getDescription().cStr());
    return failure;
  }

  capnp::MallocMessageBuilder transformed;
  auto shaped = transformed.initRoot<JsonValue>();
  Walker walker;
  walker.walkStruct(capnp::Schema::from<idl::Config>(), parsed.asReader(), shaped, "", 0);
  if (!walker.problems.empty()) {
    failure.problems = std::move(walker.problems);
    return failure;
  }

  auto message = kj::heap<capnp::MallocMessageBuilder>();
  auto root = message->initRoot<idl::Config>();
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { codec.decode(shaped.asReader(), root); })) {
    // The walk accepted something JsonCodec did not: report rather than guess.
    failure.problems.push_back(std::string("(file): ") + e->getDescription().cStr());
    return failure;
  }
  semanticChecks(root.asReader(), failure.problems);
  if (!failure.problems.empty()) return failure;
  return std::make_shared<const ConfigDocument>(kj::mv(message));
}

std::variant<std::shared_ptr<const ConfigDocument>, ConfigProblems> loadConfigFile(const std::string& path) {
  ConfigProblems failure;
  failure.code = ConfigError::kUnreadable;
  auto text = readFileBounded(path, kMaxConfigBytes);
  if (!text.ok()) {
    failure.problems.push_back("(file) " + text.message());
    return failure;
  }
  return parseConfig(text.value());
}

}  // namespace capnet

// capnpc-capnet: capnet's schema compiler, a Cap'n Proto compiler plugin.
//
//   capnp compile -I<idl> --src-prefix=<idl> -o<path>/capnpc-capnet:<outdir> idl/*.capnp
//
// From the CodeGeneratorRequest on stdin it writes into <outdir>:
//   capability-table.cpp  every interface method and the authority its `$requires` names
//                         (idl/capability-table.h declares it); a method without the annotation
//                         is an error and the plugin exits 1, so the build fails.
//   capabilities.md       the same table for people.
//   network.schema.json   JSON Schema (draft 2020-12) for config.capnp's `Config`, honouring
//                         $jsonMap, $format, $range and $Json.name, with the doc comments.
// Output is deterministic: same schemas, same bytes.

#include <capnp/dynamic.h>
#include <capnp/schema-loader.h>
#include <capnp/schema.capnp.h>
#include <capnp/serialize.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using capnp::schema::Node;
using capnp::schema::Type;

constexpr uint64_t kRequiresAnnotation = 0;   // resolved by name: authority.capnp's `requires`.
constexpr uint64_t kJsonMapAnnotation = 0x86567fb7c10e3f60ull;
constexpr uint64_t kFormatAnnotation = 0xda676075c6ea2d72ull;
constexpr uint64_t kRangeAnnotation = 0x9a4a1f95c9d72ce0ull;
constexpr uint64_t kJsonNameAnnotation = 0xfa5b1fd61c2e7c3dull;

// ---- a minimal ordered JSON writer -------------------------------------------------------------

struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool b = false;
  std::string number;   // already formatted.
  std::string s;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> fields;

  static Json str(std::string v) { Json j; j.kind = kString; j.s = std::move(v); return j; }
  static Json boolean(bool v) { Json j; j.kind = kBool; j.b = v; return j; }
  static Json integer(long long v) { Json j; j.kind = kNumber; j.number = std::to_string(v); return j; }
  static Json uinteger(unsigned long long v) { Json j; j.kind = kNumber; j.number = std::to_string(v); return j; }
  static Json object() { Json j; j.kind = kObject; return j; }
  static Json array() { Json j; j.kind = kArray; return j; }
  Json& set(std::string key, Json value) {
    for (auto& f : fields) {
      if (f.first == key) { f.second = std::move(value); return *this; }
    }
    fields.emplace_back(std::move(key), std::move(value));
    return *this;
  }
  Json& push(Json value) { items.push_back(std::move(value)); return *this; }
};

void writeString(std::ostream& out, const std::string& s) {
  out << '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out << "\\\""; break;
      case '\\': out << "\\\\"; break;
      case '\n': out << "\\n"; break;
      case '\t': out << "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out << buf;
        } else {
          out << c;
        }
    }
  }
  out << '"';
}

void writeJson(std::ostream& out, const Json& j, int indent) {
  std::string pad(indent * 2, ' '), inner((indent + 1) * 2, ' ');
  switch (j.kind) {
    case Json::kNull: out << "null"; break;
    case Json::kBool: out << (j.b ? "true" : "false"); break;
    case Json::kNumber: out << j.number; break;
    case Json::kString: writeString(out, j.s); break;
    case Json::kArray:
      if (j.items.empty()) { out << "[]"; break; }
      out << "[\n";
      for (size_t i = 0; i < j.items.size(); ++i) {
        out << inner;
        writeJson(out, j.items[i], indent + 1);
        out << (i + 1 < j.items.size() ? ",\n" : "\n");
      }
      out << pad << "]";
      break;
    case Json::kObject:
      if (j.fields.empty()) { out << "{}"; break; }
      out << "{\n";
      for (size_t i = 0; i < j.fields.size(); ++i) {
        out << inner;
        writeString(out, j.fields[i].first);
        out << ": ";
        writeJson(out, j.fields[i].second, indent + 1);
        out << (i + 1 < j.fields.size() ? ",\n" : "\n");
      }
      out << pad << "}";
      break;
  }
}

// ---- the request ---------------------------------------------------------------------------------

struct Docs {
  std::map<uint64_t, std::string> node;
  std::map<std::pair<uint64_t, unsigned>, std::string> member;
};

std::string clean(std::string doc) {
  // Doc comments arrive with their line breaks; keep paragraphs, trim each line.
  std::stringstream in(doc);
  std::string line, out;
  while (std::getline(in, line)) {
    size_t a = line.find_first_not_of(' ');
    size_t b = line.find_last_not_of(' ');
    std::string t = a == std::string::npos ? "" : line.substr(a, b - a + 1);
    if (t.empty()) {
      if (!out.empty() && out.back() != '\n') out += "\n";
      continue;
    }
    if (!out.empty() && out.back() != '\n') out += " ";
    out += t;
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string firstSentence(const std::string& doc) {
  std::string s = doc.substr(0, doc.find('\n'));
  size_t dot = s.find(". ");
  if (dot != std::string::npos) s = s.substr(0, dot + 1);
  return s;
}

class Compiler {
 public:
  Compiler(capnp::schema::CodeGeneratorRequest::Reader request) : request_(request) {
    for (auto node : request.getNodes()) loader_.load(node);
    for (auto info : request.getSourceInfo()) {
      docs_.node[info.getId()] = clean(info.getDocComment());
      unsigned i = 0;
      for (auto m : info.getMembers()) docs_.member[{info.getId(), i++}] = clean(m.getDocComment());
    }
    // Declarations found by name: authority.capnp's `requires` annotation, config.capnp's
    // `Range` struct and `knownCapabilities` constant.
    for (auto node : request.getNodes()) {
      std::string name = node.getDisplayName();
      if (node.isAnnotation() && name.ends_with("authority.capnp:requires")) requiresId_ = node.getId();
      if (node.isStruct() && name.ends_with("config.capnp:Range")) rangeId_ = node.getId();
      if (node.isConst() && name.ends_with("config.capnp:knownCapabilities")) {
        for (auto c : node.getConst().getValue().getList().getAs<capnp::List<capnp::Text>>()) {
          knownCapabilities_.push_back(c);
        }
      }
    }
  }

  bool capabilityTable(std::string& cpp, std::string& md, std::string& error);
  bool jsonSchema(std::string& out, std::string& error);

 private:
  struct Method {
    uint64_t interfaceId;
    uint16_t methodId;
    std::string interfaceName, methodName, authority, doc, file;
  };

  std::string shortName(const Node::Reader& node) {
    std::string d = node.getDisplayName();
    return d.substr(node.getDisplayNamePrefixLength());
  }

  void collectInterfaces(uint64_t id, const std::string& file, std::vector<uint64_t>& out) {
    auto node = loader_.get(id).getProto();
    if (node.isInterface()) out.push_back(id);
    for (auto nested : node.getNestedNodes()) collectInterfaces(nested.getId(), file, out);
  }

  kj::Maybe<capnp::schema::Value::Reader> annotation(capnp::List<capnp::schema::Annotation>::Reader list,
                                                     uint64_t id) {
    for (auto a : list) {
      if (a.getId() == id) return a.getValue();
    }
    return nullptr;
  }

  Json typeSchema(capnp::Type type, capnp::List<capnp::schema::Annotation>::Reader annotations,
                  const std::string& doc, kj::Maybe<capnp::schema::Value::Reader> defaultValue);
  Json structSchema(capnp::StructSchema schema);
  Json textSchema(const std::string& format);

  capnp::schema::CodeGeneratorRequest::Reader request_;
  capnp::SchemaLoader loader_;
  Docs docs_;
  uint64_t requiresId_ = kRequiresAnnotation;
  uint64_t rangeId_ = 0;
  std::vector<std::string> knownCapabilities_;
};

bool Compiler::capabilityTable(std::string& cpp, std::string& md, std::string& error) {
  if (requiresId_ == 0) {
    error = "authority.capnp's `requires` annotation is not among the compiled files";
    return false;
  }
  std::vector<Method> methods;
  std::vector<std::string> missing;
  for (auto file : request_.getRequestedFiles()) {
    std::vector<uint64_t> interfaces;
    collectInterfaces(file.getId(), file.getFilename(), interfaces);
    for (uint64_t id : interfaces) {
      auto node = loader_.get(id).getProto();
      unsigned ordinal = 0;
      for (auto m : node.getInterface().getMethods()) {
        Method out;
        out.interfaceId = id;
        out.methodId = static_cast<uint16_t>(ordinal);
        out.interfaceName = shortName(node);
        out.methodName = m.getName();
        out.file = file.getFilename();
        auto it = docs_.member.find({id, ordinal});
        if (it != docs_.member.end()) out.doc = it->second;
        ++ordinal;
        KJ_IF_MAYBE(v, annotation(m.getAnnotations(), requiresId_)) {
          out.authority = v->getText();
        }
        if (out.authority.empty()) {
          missing.push_back(out.file + ": " + out.interfaceName + "." + out.methodName);
          continue;
        }
        methods.push_back(std::move(out));
      }
    }
  }
  if (!missing.empty()) {
    error = "these methods have no $requires annotation (idl/authority.capnp):";
    for (auto& m : missing) error += "\n  " + m;
    return false;
  }
  std::vector<Method> sorted = methods;
  std::sort(sorted.begin(), sorted.end(), [](const Method& a, const Method& b) {
    return std::make_pair(a.interfaceId, a.methodId) < std::make_pair(b.interfaceId, b.methodId);
  });
  std::ostringstream c;
  c << "// Generated by capnpc-capnet from idl/*.capnp. Do not edit.\n"
    << "#include \"idl/capability-table.h\"\n\n"
    << "namespace capnet::idl {\nnamespace {\n\n"
    << "constexpr MethodAuthority kTable[] = {\n";
  for (const auto& m : sorted) {
    char id[32];
    std::snprintf(id, sizeof(id), "0x%016llxull", static_cast<unsigned long long>(m.interfaceId));
    c << "    {" << id << ", " << m.methodId << ", \"" << m.interfaceName << "\", \"" << m.methodName
      << "\", \"" << m.authority << "\"},\n";
  }
  c << "};\n\n}  // namespace\n\n"
    << "std::span<const MethodAuthority> capabilityTable() { return kTable; }\n\n"
    << "}  // namespace capnet::idl\n";
  cpp = c.str();

  std::ostringstream d;
  d << "# Capabilities required by each IPC method\n\n"
    << "Generated by capnet's schema compiler (`idl/compiler/`) from the `$requires` annotations in\n"
    << "`idl/*.capnp`; a test fails when this file differs from the generated one (refresh it with\n"
    << "`cmake --build build --target refresh-generated`). Every server consults the same table\n"
    << "before it dispatches a call (`idl/gate.h`).\n\n"
    << "Reserved names: `principal` = any principal the config names; `capd` = only capd's uid (the\n"
    << "privileged control channel); `held` = possession of the object capability is the authority.\n"
    << "Every other name is a capability granted to principals in the policy config.\n\n"
    << "| interface | method | requires | caller and purpose |\n|---|---|---|---|\n";
  for (const auto& m : methods) {
    std::string doc = firstSentence(m.doc);
    for (auto& ch : doc) {
      if (ch == '|') ch = '/';
    }
    d << "| `" << m.interfaceName << "` (" << m.file << ") | `" << m.methodName << "` | `" << m.authority
      << "` | " << doc << " |\n";
  }
  md = d.str();
  return true;
}

Json Compiler::textSchema(const std::string& format) {
  Json j = Json::object();
  j.set("type", Json::str("string"));
  if (format == "ipv4") {
    j.set("format", Json::str("ipv4"));
  } else if (format == "date") {
    j.set("format", Json::str("date"));
    j.set("pattern", Json::str("^[0-9]{4}-[0-9]{2}-[0-9]{2}$"));
  } else if (format == "hostname") {
    j.set("pattern", Json::str("^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\\.[A-Za-z0-9_-]{1,63})*$"));
    j.set("maxLength", Json::integer(253));
  } else if (format == "capability") {
    Json e = Json::array();
    for (const auto& c : knownCapabilities_) e.push(Json::str(c));
    j.set("enum", std::move(e));
  }
  return j;
}

Json Compiler::typeSchema(capnp::Type type, capnp::List<capnp::schema::Annotation>::Reader annotations,
                          const std::string& doc, kj::Maybe<capnp::schema::Value::Reader> dflt) {
  Json j = Json::object();
  std::string format;
  KJ_IF_MAYBE(v, annotation(annotations, kFormatAnnotation)) { format = v->getText(); }
  bool isMap = annotation(annotations, kJsonMapAnnotation) != nullptr;
  if (isMap && type.isList() && type.asList().getElementType().isStruct()) {
    auto entry = type.asList().getElementType().asStruct();
    j.set("type", Json::str("object"));
    KJ_IF_MAYBE(key, entry.findFieldByName("key")) {
      std::string keyFormat;
      KJ_IF_MAYBE(v, annotation(key->getProto().getAnnotations(), kFormatAnnotation)) { keyFormat = v->getText(); }
      Json names = textSchema(keyFormat);
      j.set("propertyNames", std::move(names));
    }
    KJ_IF_MAYBE(value, entry.findFieldByName("value")) {
      std::string valueDoc = docs_.member[{entry.getProto().getId(), value->getIndex()}];
      j.set("additionalProperties",
            typeSchema(value->getType(), value->getProto().getAnnotations(), valueDoc, nullptr));
    }
  } else {
    switch (type.which()) {
      case Type::BOOL:
        j.set("type", Json::str("boolean"));
        KJ_IF_MAYBE(v, dflt) { j.set("default", Json::boolean(v->getBool())); }
        break;
      case Type::INT8: case Type::INT16: case Type::INT32: case Type::INT64:
      case Type::UINT8: case Type::UINT16: case Type::UINT32: case Type::UINT64: {
        j.set("type", Json::str("integer"));
        long long lo = 0, hi = 0;
        bool haveHi = true;
        switch (type.which()) {
          case Type::INT8: lo = -128; hi = 127; break;
          case Type::INT16: lo = -32768; hi = 32767; break;
          case Type::INT32: lo = INT32_MIN; hi = INT32_MAX; break;
          case Type::UINT8: hi = 255; break;
          case Type::UINT16: hi = 65535; break;
          case Type::UINT32: hi = 4294967295LL; break;
          case Type::UINT64: hi = 9007199254740992LL; break;
          default: lo = -9007199254740992LL; hi = 9007199254740992LL; break;
        }
        KJ_IF_MAYBE(v, annotation(annotations, kRangeAnnotation)) {
          // config.capnp's Range {min :Int64, max :Int64}.
          auto range = v->getStruct().getAs<capnp::DynamicStruct>(loader_.get(rangeId_).asStruct());
          lo = std::max(lo, static_cast<long long>(range.get("min").template as<int64_t>()));
          hi = std::min(hi, static_cast<long long>(range.get("max").template as<int64_t>()));
        }
        j.set("minimum", Json::integer(lo));
        if (haveHi) j.set("maximum", Json::integer(hi));
        // A zero default below the minimum means "required": no default is stated.
        if (lo > 0) dflt = nullptr;
        KJ_IF_MAYBE(v, dflt) {
          switch (type.which()) {
            case Type::UINT8: j.set("default", Json::uinteger(v->getUint8())); break;
            case Type::UINT16: j.set("default", Json::uinteger(v->getUint16())); break;
            case Type::UINT32: j.set("default", Json::uinteger(v->getUint32())); break;
            case Type::UINT64: j.set("default", Json::uinteger(v->getUint64())); break;
            case Type::INT8: j.set("default", Json::integer(v->getInt8())); break;
            case Type::INT16: j.set("default", Json::integer(v->getInt16())); break;
            case Type::INT32: j.set("default", Json::integer(v->getInt32())); break;
            default: j.set("default", Json::integer(v->getInt64())); break;
          }
        }
        break;
      }
      case Type::TEXT:
        j = textSchema(format);
        break;
      case Type::ENUM: {
        Json e = Json::array();
        auto enums = type.asEnum().getEnumerants();
        for (auto en : enums) {
          std::string name = en.getProto().getName();
          KJ_IF_MAYBE(v, annotation(en.getProto().getAnnotations(), kJsonNameAnnotation)) { name = v->getText(); }
          e.push(Json::str(name));
        }
        unsigned dfltIndex = 0;
        KJ_IF_MAYBE(v, dflt) { dfltIndex = v->getEnum(); }
        Json dfltName = dfltIndex < e.items.size() ? e.items[dfltIndex] : Json();
        j.set("enum", std::move(e));
        j.set("default", std::move(dfltName));
        break;
      }
      case Type::LIST:
        j.set("type", Json::str("array"));
        j.set("items", typeSchema(type.asList().getElementType(), annotations, "", nullptr));
        break;
      case Type::STRUCT:
        j = structSchema(type.asStruct());
        break;
      default:
        j.set("description", Json::str("(type not used in configs)"));
        break;
    }
  }
  if (!doc.empty()) {
    Json described = Json::object();
    described.set("description", Json::str(doc));
    for (auto& f : j.fields) {
      if (f.first != "description") described.set(f.first, f.second);
    }
    return described;
  }
  return j;
}

Json Compiler::structSchema(capnp::StructSchema schema) {
  Json j = Json::object();
  j.set("type", Json::str("object"));
  j.set("additionalProperties", Json::boolean(false));
  Json props = Json::object();
  for (auto field : schema.getFields()) {
    auto proto = field.getProto();
    std::string name = proto.getName();
    KJ_IF_MAYBE(v, annotation(proto.getAnnotations(), kJsonNameAnnotation)) { name = v->getText(); }
    std::string doc = docs_.member[{schema.getProto().getId(), field.getIndex()}];
    kj::Maybe<capnp::schema::Value::Reader> dflt;
    if (proto.isSlot()) dflt = proto.getSlot().getDefaultValue();
    props.set(name, typeSchema(field.getType(), proto.getAnnotations(), doc, dflt));
  }
  j.set("properties", std::move(props));
  return j;
}



bool Compiler::jsonSchema(std::string& out, std::string& error) {
  uint64_t configId = 0;
  for (auto node : request_.getNodes()) {
    std::string name = node.getDisplayName();
    if (node.isStruct() && name.ends_with("config.capnp:Config")) configId = node.getId();
  }
  if (configId == 0) return true;   // config.capnp not among the inputs: nothing to write.
  if (rangeId_ == 0 || knownCapabilities_.empty()) {
    error = "config.capnp lacks Range or knownCapabilities";
    return false;
  }
  Json root = Json::object();
  root.set("$schema", Json::str("https://json-schema.org/draft/2020-12/schema"));
  root.set("$id", Json::str("capnet/network.schema.json"));
  root.set("title", Json::str("capnet network policy config"));
  std::string doc = docs_.node[configId];
  std::string fileDoc;
  for (auto file : request_.getRequestedFiles()) {
    if (std::string(file.getFilename().cStr()).ends_with("config.capnp")) fileDoc = docs_.node[file.getId()];
  }
  root.set("description", Json::str(fileDoc.empty() ? doc : fileDoc));
  Json body = structSchema(loader_.get(configId).asStruct());
  for (auto& f : body.fields) root.set(f.first, f.second);
  std::ostringstream s;
  s.imbue(std::locale::classic());
  writeJson(s, root, 0);
  s << "\n";
  out = s.str();
  (void)error;
  return true;
}

bool writeFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  return static_cast<bool>(f);
}

}  // namespace

int main() {
  try {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = 1ull << 28;
    options.nestingLimit = 128;
    capnp::StreamFdMessageReader reader(STDIN_FILENO, options);
    Compiler compiler(reader.getRoot<capnp::schema::CodeGeneratorRequest>());
    std::string cpp, md, json, error;
    if (!compiler.capabilityTable(cpp, md, error)) {
      std::cerr << "capnpc-capnet: " << error << "\n";
      return 1;
    }
    if (!compiler.jsonSchema(json, error)) {
      std::cerr << "capnpc-capnet: " << error << "\n";
      return 1;
    }
    if (!writeFile("capability-table.cpp", cpp) || !writeFile("capabilities.md", md) ||
        (!json.empty() && !writeFile("network.schema.json", json))) {
      std::cerr << "capnpc-capnet: cannot write output files\n";
      return 1;
    }
    return 0;
  } catch (const kj::Exception& e) {
    std::cerr << "capnpc-capnet: " << e.getDescription().cStr() << "\n";
    return 1;
  }
}

#include "idl/compiler/schema-request.h"

#include <algorithm>

namespace capnet::compiler {

namespace {

// "authority.capnp:requires" or "some/dir/authority.capnp:requires" -> ("authority.capnp", "requires").
std::pair<std::string_view, std::string_view> splitDisplayName(std::string_view display) {
  size_t colon = display.rfind(':');
  if (colon == std::string_view::npos) return {display, {}};
  std::string_view file = display.substr(0, colon);
  size_t slash = file.rfind('/');
  if (slash != std::string_view::npos) file = file.substr(slash + 1);
  return {file, display.substr(colon + 1)};
}

}  // namespace

SchemaRequest::SchemaRequest(capnp::schema::CodeGeneratorRequest::Reader request) {
  for (auto node : request.getNodes()) {
    loader_.load(node);
    nodes_.push_back(node);
  }
  for (auto file : request.getRequestedFiles()) {
    files_.push_back({file.getId(), std::string(file.getFilename().cStr())});
  }
  std::sort(files_.begin(), files_.end(), [](const File& a, const File& b) { return a.name < b.name; });
  for (auto info : request.getSourceInfo()) {
    nodeDocs_[info.getId()] = normaliseDoc(info.getDocComment().cStr());
    unsigned i = 0;
    for (auto member : info.getMembers()) {
      memberDocs_[{info.getId(), i++}] = normaliseDoc(member.getDocComment().cStr());
    }
  }
  if (auto* n = find("authority.capnp", "requires"); n != nullptr && n->isAnnotation()) {
    requiresId_ = n->getId();
  }
  if (auto* n = find("config.capnp", "knownCapabilities"); n != nullptr && n->isConst()) {
    auto value = n->getConst().getValue();
    if (value.isList()) {
      for (auto c : value.getList().getAs<capnp::List<capnp::Text>>()) knownCapabilities_.emplace_back(c.cStr());
    }
  }
}

std::string SchemaRequest::nodeDoc(uint64_t id) const {
  auto it = nodeDocs_.find(id);
  return it == nodeDocs_.end() ? std::string() : it->second;
}

std::string SchemaRequest::memberDoc(uint64_t id, unsigned index) const {
  auto it = memberDocs_.find({id, index});
  return it == memberDocs_.end() ? std::string() : it->second;
}

const capnp::schema::Node::Reader* SchemaRequest::find(std::string_view file, std::string_view name) const {
  for (const auto& node : nodes_) {
    auto display = node.getDisplayName();
    auto [f, n] = splitDisplayName(std::string_view(display.cStr(), display.size()));
    if (f == file && n == name) return &node;
  }
  return nullptr;
}

std::string normaliseDoc(std::string_view raw) {
  std::string out;
  bool paragraphBreak = false;
  while (!raw.empty()) {
    size_t nl = raw.find('\n');
    std::string_view line = raw.substr(0, nl);
    raw = nl == std::string_view::npos ? std::string_view() : raw.substr(nl + 1);
    size_t a = line.find_first_not_of(" \t\r");
    if (a == std::string_view::npos) {
      paragraphBreak = !out.empty();
      continue;
    }
    line = line.substr(a, line.find_last_not_of(" \t\r") - a + 1);
    if (!out.empty()) {
      if (paragraphBreak) {
        out += '\n';
      } else if (out.back() != '/') {
        out += ' ';
      }
    }
    paragraphBreak = false;
    out += line;
  }
  return out;
}

std::string firstSentence(std::string_view doc) {
  std::string_view s = doc.substr(0, doc.find('\n'));
  size_t dot = s.find(". ");
  if (dot != std::string_view::npos) s = s.substr(0, dot + 1);
  return std::string(s);
}

kj::Maybe<capnp::schema::Value::Reader> findAnnotation(Annotations list, uint64_t id, unsigned* count) {
  kj::Maybe<capnp::schema::Value::Reader> found;
  unsigned n = 0;
  for (auto a : list) {
    if (a.getId() != id) continue;
    if (n++ == 0) found = a.getValue();
  }
  if (count != nullptr) *count = n;
  return found;
}

}  // namespace capnet::compiler

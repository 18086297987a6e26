#include "common/paths.h"

namespace capnet {
namespace {

bool escapes(std::string_view rest) {
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t next = rest.find('/', pos);
    if (next == std::string_view::npos) next = rest.size();
    if (rest.substr(pos, next - pos) == "..") return true;
    pos = next + 1;
  }
  return false;
}

}  // namespace

std::optional<std::string> Roots::resolve(std::string_view uri) const {
  constexpr std::string_view kPkg = "pkg://";
  constexpr std::string_view kState = "state:/";
  std::string_view rest;
  const std::string* root = nullptr;
  if (uri.starts_with(kPkg)) {
    rest = uri.substr(kPkg.size());
    root = &pkg;
  } else if (uri.starts_with(kState)) {
    rest = uri.substr(kState.size());
    root = &state;
  } else {
    return std::nullopt;
  }
  while (rest.starts_with('/')) rest.remove_prefix(1);
  if (escapes(rest) || rest.find('\0') != std::string_view::npos) return std::nullopt;
  std::string out = *root;
  out.push_back('/');
  out.append(rest);
  return out;
}

}  // namespace capnet

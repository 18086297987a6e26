// fetchd's URL parser and redirect resolution: the first line is the request URL, the rest a
// Location header's value.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)capnet::parseUrl(in);
  auto nl = in.find('\n');
  if (nl == std::string_view::npos) return 0;
  auto base = capnet::parseUrl(in.substr(0, nl));
  if (!base.ok()) return 0;
  auto next = capnet::resolveReference(base.value(), in.substr(nl + 1));
  if (next.ok()) (void)next->text();
  (void)capnet::removeDotSegments(in.substr(nl + 1));
  return 0;
}

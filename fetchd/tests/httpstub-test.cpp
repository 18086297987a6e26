#include <doctest/doctest.h>

#include <string>

#include "fetchd/httpstub.h"

using namespace capnet;

namespace {
std::string header(const StubResponse& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}
const std::string kWeb = std::string(CAPNET_SOURCE_DIR) + "/selftest/fixtures/web";
}  // namespace

TEST_CASE("httpstubd serves fixture files with fixed headers and a stable ETag, no Date") {
  HttpStub stub(kWeb);
  auto a = stub.serve("/index.html", false);
  CHECK(a.status == 200);
  CHECK(a.body.find("httpstubd") != std::string::npos);
  CHECK(header(a, "Content-Type") == "text/html; charset=utf-8");
  CHECK(header(a, "Content-Length") == std::to_string(a.body.size()));
  CHECK(header(a, "Date").empty());
  auto b = stub.serve("/index.html?cache=no", false);
  CHECK(header(b, "ETag") == header(a, "ETag"));
  CHECK(header(a, "ETag").size() == 18);
  CHECK(stub.serve("/", false).body == a.body);
}

TEST_CASE("httpstubd answers 404 for unknown paths and refuses traversal") {
  HttpStub stub(kWeb);
  CHECK(stub.serve("/missing.html", false).status == 404);
  CHECK(stub.serve("/../CMakeLists.txt", false).status == 404);
  CHECK(stub.serve("/a/../../x", false).status == 404);
  CHECK(stub.serve("/%2e%2e/x", false).status == 404);
  CHECK(stub.serve("/.hidden", false).status == 404);
}

TEST_CASE("httpstubd HEAD carries the headers without the body") {
  HttpStub stub(kWeb);
  auto h = stub.serve("/index.html", true);
  CHECK(h.status == 200);
  CHECK(h.body.empty());
  CHECK(h.contentLength > 0);
}

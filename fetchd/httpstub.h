// httpstubd: the deterministic fixture responder behind http://fixture.local/. It opens no socket:
// fetchd calls it in process. Files come from pkg://fixtures/web/; responses carry fixed headers
// (no Date), a deterministic ETag and Content-Type by extension; unknown paths are 404.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace capnet {

struct StubResponse {
  uint16_t status = 404;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;        // empty for HEAD
  uint64_t contentLength = 0;
};

class HttpStub {
 public:
  explicit HttpStub(std::string webRoot) : root_(std::move(webRoot)) {}
  // `target` is the request target ("/index.html?x"); the query is ignored. `head` omits the body.
  StubResponse serve(const std::string& target, bool head) const;
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

}  // namespace capnet

#include "fetchd/httpstub.h"

#include "common/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

namespace capnet {
namespace {

constexpr uint64_t kMaxFixtureBytes = 64u << 20;

std::string contentType(const std::string& path) {
  auto dot = path.rfind('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
  if (ext == "txt") return "text/plain; charset=utf-8";
  if (ext == "json") return "application/json";
  if (ext == "css") return "text/css";
  if (ext == "js") return "text/javascript";
  if (ext == "png") return "image/png";
  return "application/octet-stream";
}

// FNV-1a 64: a deterministic content tag, not a security boundary.
std::string etagOf(const std::string& body) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : body) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[24];
  std::snprintf(buf, sizeof(buf), "\"%016llx\"", static_cast<unsigned long long>(h));
  return buf;
}

// "/a/b.html" -> "a/b.html"; empty when the path is not a plain relative file path.
std::string safeRelative(const std::string& path) {
  if (path.empty() || path[0] != '/') return "";
  std::string rel = path.substr(1);
  if (rel.empty() || rel.back() == '/') rel += "index.html";
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    std::string seg = rel.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == ".." || seg.find('%') != std::string::npos || seg[0] == '.') return "";
    start = end + 1;
  }
  return rel;
}

}  // namespace

StubResponse HttpStub::serve(const std::string& target, bool head) const {
  StubResponse r;
  std::string path = target.substr(0, target.find('?'));
  std::string rel = safeRelative(path);
  std::string file = root_ + "/" + rel;
  auto read = rel.empty() ? Result<std::string, FileError>(Error<FileError>{FileError::kUnreadable, "outside the root"})
                          : readFileBounded(file, kMaxFixtureBytes);
  if (!read.ok()) {
    r.status = 404;
    std::string body = "not found\n";
    r.contentLength = body.size();
    r.headers = {{"Content-Type", "text/plain; charset=utf-8"},
                 {"Content-Length", std::to_string(body.size())},
                 {"Server", "httpstubd"}};
    if (!head) r.body = std::move(body);
    return r;
  }
  std::string body = std::move(read).value();
  r.status = 200;
  r.contentLength = body.size();
  r.headers = {{"Content-Type", contentType(rel)},
               {"Content-Length", std::to_string(body.size())},
               {"ETag", etagOf(body)},
               {"Server", "httpstubd"}};
  if (!head) r.body = std::move(body);
  return r;
}

}  // namespace capnet

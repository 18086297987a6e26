// A TcpStack (netd/tcp-stack.h) whose peers live in memory (netd/memory-connection.h), for tests,
// benchmarks and fuzz targets that run netd's server without a network. A subclass decides what
// answers a connect; the peers it can hand out: an echo, and an HTTP origin that reads a request
// head and answers it.
#pragma once

#include <kj/async.h>
#include <kj/function.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "netd/memory-connection.h"
#include "netd/tcp-stack.h"

namespace capnet::testing {

class MemoryStack : public TcpStack {
 public:
  using Connected = Result<kj::Own<TcpConnection>, ConnectError>;

  explicit MemoryStack(std::string detail = "memory") : detail_(std::move(detail)) {}
  ~MemoryStack() noexcept override {}
  bool up() const override { return true; }
  std::string detail() const override { return detail_; }

  // A connection whose far end writes back what it reads, until the near end half-closes.
  Connected echoPeer(size_t buffer = 4096) {
    auto [client, server] = newMemoryConnectionPair(buffer);
    tasks_.add(echo(kj::mv(server)));
    return Connected(kj::Own<TcpConnection>(kj::mv(client)));
  }

  // A connection whose far end reads a request head (through the blank line, or to EOF), gives it
  // to `answer`, writes the answer in 8 KiB pieces and half-closes.
  Connected httpPeer(kj::Function<std::string(const std::string& head)> answer, size_t buffer = 16384) {
    auto [client, server] = newMemoryConnectionPair(buffer);
    auto state = std::make_shared<Http>(Http{kj::mv(answer), {}});
    tasks_.add(serveHttp(kj::mv(server), state));
    return Connected(kj::Own<TcpConnection>(kj::mv(client)));
  }

  static kj::Promise<void> echo(kj::Own<MemoryConnection> c) {
    auto& conn = *c;
    return conn.read(4096).then([&conn](ReadResult r) -> kj::Promise<void> {
      if (r.eof) return conn.shutdownWrite();
      auto data = kj::mv(r.data);
      auto bytes = data.asPtr();
      return conn.write(bytes).attach(kj::mv(data)).then([&conn]() {
        return echo(kj::Own<MemoryConnection>(&conn, kj::NullDisposer::instance));
      });
    }).attach(kj::mv(c));
  }

 private:
  struct Http {
    kj::Function<std::string(const std::string&)> answer;
    std::string head;
  };
  static kj::Promise<void> serveHttp(kj::Own<MemoryConnection> c, std::shared_ptr<Http> http) {
    auto& conn = *c;
    return conn.read(4096).then([&conn, http](ReadResult r) -> kj::Promise<void> {
      http->head.append(reinterpret_cast<const char*>(r.data.begin()), r.data.size());
      if (http->head.find("\r\n\r\n") == std::string::npos && !r.eof) {
        return serveHttp(kj::Own<MemoryConnection>(&conn, kj::NullDisposer::instance), http);
      }
      auto out = std::make_shared<std::string>(http->answer(http->head));
      return writeAll(conn, out, 0).then([&conn]() { return conn.shutdownWrite(); });
    }).attach(kj::mv(c));
  }
  static kj::Promise<void> writeAll(MemoryConnection& conn, std::shared_ptr<std::string> s, size_t off) {
    if (off >= s->size()) return kj::READY_NOW;
    size_t n = std::min<size_t>(8192, s->size() - off);
    return conn.write(kj::arrayPtr(reinterpret_cast<const kj::byte*>(s->data() + off), n)).then([&conn, s, off, n]() {
      return writeAll(conn, s, off + n);
    });
  }

  struct IgnoreErrors : kj::TaskSet::ErrorHandler {
    void taskFailed(kj::Exception&&) override {}
  };
  std::string detail_;
  IgnoreErrors ignore_;
  kj::TaskSet tasks_{ignore_};
};

}  // namespace capnet::testing

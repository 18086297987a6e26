// A kj::AsyncIoStream (a socket pair, a pipe) as netd's TcpConnection, for tests and fuzz targets
// that run netd's TLS client against a real peer process. With `received` set it also records every
// byte read (the TLS fuzz target records a server's flights as seeds).
#pragma once

#include <kj/async-io.h>

#include <string>

#include "netd/tcp-stack.h"

namespace capnet::testing {

class StreamConnection final : public TcpConnection {
 public:
  explicit StreamConnection(kj::Own<kj::AsyncIoStream> s, std::string* received = nullptr)
      : s_(kj::mv(s)), received_(received) {}
  ~StreamConnection() noexcept override {}
  kj::Promise<ReadResult> read(size_t maxBytes) override {
    auto buf = kj::heapArray<kj::byte>(maxBytes);
    auto p = s_->tryRead(buf.begin(), 1, maxBytes);
    return p.then([this, buf = kj::mv(buf)](size_t n) mutable {
      if (n == 0) return ReadResult{kj::heapArray<kj::byte>(0), true};
      if (received_ != nullptr) received_->append(reinterpret_cast<const char*>(buf.begin()), n);
      return ReadResult{kj::heapArray<kj::byte>(buf.slice(0, n)), false};
    });
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::byte> data) override { return s_->write(data.begin(), data.size()); }
  kj::Promise<void> shutdownWrite() override {
    s_->shutdownWrite();
    return kj::READY_NOW;
  }
  uint16_t localPort() const override { return 40000; }

 private:
  kj::Own<kj::AsyncIoStream> s_;
  std::string* received_;
};

}  // namespace capnet::testing

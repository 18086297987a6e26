// An in-memory TcpConnection pair with bounded buffers: host tests of netd's server, TLS and
// fetchd use it in place of lwIP. Flow control is real: a write waits while the peer's receive
// buffer is full, exactly as a TCP send buffer would.
#pragma once

#include <kj/async.h>

#include <deque>

#include "netd/tcp-stack.h"

namespace capnet {

struct MemoryPipeState;

class MemoryConnection final : public TcpConnection {
 public:
  MemoryConnection(kj::Own<MemoryPipeState> pipe, bool sideA, uint16_t localPort);
  ~MemoryConnection() noexcept override;
  kj::Promise<ReadResult> read(size_t maxBytes) override;
  kj::Promise<void> write(kj::ArrayPtr<const kj::byte> data) override;
  kj::Promise<void> shutdownWrite() override;
  uint16_t localPort() const override { return localPort_; }
  size_t buffered() const;   // bytes waiting for this side to read.

 private:
  kj::Own<MemoryPipeState> pipe_;
  bool a_;
  uint16_t localPort_;
};

// Two connected ends; `capacity` bounds each direction's buffer.
std::pair<kj::Own<MemoryConnection>, kj::Own<MemoryConnection>> newMemoryConnectionPair(size_t capacity = 64 * 1024);

}  // namespace capnet

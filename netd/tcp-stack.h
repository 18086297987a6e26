// The seam between netd's IPC server (the connect gate, byte streams) and the TCP/IP stack
// underneath it (lwIP over virtio-net in the guest; in-memory fakes in host tests). TLS wraps a
// TcpConnection in another TcpConnection (netd/tls/).
//
// Everything runs on netd's single KJ event loop: promises, no threads, no blocking.
#pragma once

#include <kj/array.h>
#include <kj/async.h>
#include <kj/memory.h>

#include <cstdint>
#include <string>

#include "common/result.h"

namespace capnet {

struct ReadResult {
  kj::Array<kj::byte> data;   // empty only at EOF.
  bool eof = false;
};

class TcpConnection {
 public:
  virtual ~TcpConnection() = default;   // destroying it aborts the connection (RST) if still open.

  // Resolves with 1..maxBytes bytes, or with eof=true and no bytes once the peer has finished.
  // Rejects (kj::Exception, DISCONNECTED) when the connection was reset or failed. One read at a time.
  virtual kj::Promise<ReadResult> read(size_t maxBytes) = 0;

  // Resolves once every byte is queued in the stack's send buffer (backpressure: a slow peer
  // slows the writer). Rejects when the connection is closed or reset. One write at a time.
  virtual kj::Promise<void> write(kj::ArrayPtr<const kj::byte> data) = 0;

  // Half-close: FIN after the queued bytes. Reads continue.
  virtual kj::Promise<void> shutdownWrite() = 0;

  virtual uint16_t localPort() const = 0;
};

enum class ConnectError : uint8_t {
  kInternal = 0,
  kNoStack,        // the stack is not up (no NIC, VFIO unusable).
  kTimeout,        // no SYN-ACK within the timeout.
  kRefused,        // RST from the peer.
  kTooMany,        // connection limit reached.
};

class TcpStack {
 public:
  virtual ~TcpStack() = default;

  virtual bool up() const = 0;
  // Why it is (not) up, for `netd: stack unavailable reason=...` and status calls.
  virtual std::string detail() const = 0;
  // The stack's and its link's counters ("key=value ..."), for netd's status; empty when none.
  virtual std::string countersText() const { return {}; }

  // addressHostOrder: IPv4 in host byte order.
  virtual kj::Promise<Result<kj::Own<TcpConnection>, ConnectError>> connect(
      uint32_t addressHostOrder, uint16_t port, uint32_t timeoutMs) = 0;
};

}  // namespace capnet

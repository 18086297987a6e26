#include "netd/memory-connection.h"

#include <kj/debug.h>
#include <kj/refcount.h>

#include <algorithm>

namespace capnet {

struct Direction {
  std::deque<kj::byte> bytes;
  bool finished = false;   // writer shut down.
  bool broken = false;     // an end was destroyed (reset).
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> readable;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> writable;
  void wakeReader() {
    KJ_IF_MAYBE(f, readable) { (*f)->fulfill(); }
    readable = nullptr;
  }
  void wakeWriter() {
    KJ_IF_MAYBE(f, writable) { (*f)->fulfill(); }
    writable = nullptr;
  }
};

struct MemoryPipeState : public kj::Refcounted {
  explicit MemoryPipeState(size_t cap) : capacity(cap) {}
  size_t capacity;
  Direction aToB, bToA;
};

MemoryConnection::MemoryConnection(kj::Own<MemoryPipeState> pipe, bool sideA, uint16_t localPort)
    : pipe_(kj::mv(pipe)), a_(sideA), localPort_(localPort) {}

MemoryConnection::~MemoryConnection() noexcept {
  for (Direction* d : {&pipe_->aToB, &pipe_->bToA}) {
    d->broken = true;
    d->wakeReader();
    d->wakeWriter();
  }
}

size_t MemoryConnection::buffered() const { return (a_ ? pipe_->bToA : pipe_->aToB).bytes.size(); }

kj::Promise<ReadResult> MemoryConnection::read(size_t maxBytes) {
  Direction& in = a_ ? pipe_->bToA : pipe_->aToB;
  if (!in.bytes.empty()) {
    size_t n = std::min(maxBytes, in.bytes.size());
    auto out = kj::heapArray<kj::byte>(n);
    std::copy_n(in.bytes.begin(), n, out.begin());
    in.bytes.erase(in.bytes.begin(), in.bytes.begin() + static_cast<ptrdiff_t>(n));
    in.wakeWriter();
    return ReadResult{kj::mv(out), false};
  }
  if (in.finished) return ReadResult{kj::heapArray<kj::byte>(0), true};
  if (in.broken) return KJ_EXCEPTION(DISCONNECTED, "connection reset by peer");
  auto paf = kj::newPromiseAndFulfiller<void>();
  in.readable = kj::mv(paf.fulfiller);
  return paf.promise.then([this, maxBytes]() { return read(maxBytes); });
}

kj::Promise<void> MemoryConnection::write(kj::ArrayPtr<const kj::byte> data) {
  Direction& out = a_ ? pipe_->aToB : pipe_->bToA;
  if (out.broken) return KJ_EXCEPTION(DISCONNECTED, "connection reset by peer");
  if (out.finished) return KJ_EXCEPTION(FAILED, "write after shutdownWrite");
  if (data.size() == 0) return kj::READY_NOW;
  size_t room = pipe_->capacity > out.bytes.size() ? pipe_->capacity - out.bytes.size() : 0;
  if (room == 0) {
    auto paf = kj::newPromiseAndFulfiller<void>();
    out.writable = kj::mv(paf.fulfiller);
    return paf.promise.then([this, data]() { return write(data); });
  }
  size_t n = std::min(room, data.size());
  out.bytes.insert(out.bytes.end(), data.begin(), data.begin() + n);
  out.wakeReader();
  if (n == data.size()) return kj::READY_NOW;
  return write(data.slice(n, data.size()));
}

kj::Promise<void> MemoryConnection::shutdownWrite() {
  Direction& out = a_ ? pipe_->aToB : pipe_->bToA;
  out.finished = true;
  out.wakeReader();
  return kj::READY_NOW;
}

std::pair<kj::Own<MemoryConnection>, kj::Own<MemoryConnection>> newMemoryConnectionPair(size_t capacity) {
  auto state = kj::refcounted<MemoryPipeState>(capacity);
  auto a = kj::heap<MemoryConnection>(kj::addRef(*state), true, 40000);
  auto b = kj::heap<MemoryConnection>(kj::mv(state), false, 7);
  return {kj::mv(a), kj::mv(b)};
}

}  // namespace capnet

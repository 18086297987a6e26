// A Cap'n Proto RPC peer that misbehaves on purpose, for tests that attack a daemon's socket: it
// speaks the wire protocol by hand over a plain blocking Unix socket (no KJ event loop, so it can
// run in a thread or a child process beside the server under test), pipelines calls without
// waiting for answers, and never reads what the server sends back.
#pragma once

#include <capnp/message.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>


#include <cerrno>
#include <cstring>
#include <functional>
#include <string>

namespace capnet::testing {

// An rpc::Message Call into `m`: question `questionId` calls method `methodId` of `interfaceId` on
// the answer to question `target` (pipelined), or with `field` >= 0 on the capability in that
// pointer field of the answer's result struct; `fill` writes the parameters (no capabilities).
inline void buildCall(capnp::MessageBuilder& m, uint32_t questionId, uint32_t target, int field, uint64_t interfaceId,
                      uint16_t methodId, const std::function<void(capnp::AnyPointer::Builder)>& fill) {
  auto c = m.initRoot<capnp::rpc::Message>().initCall();
  c.setQuestionId(questionId);
  auto pa = c.initTarget().initPromisedAnswer();
  pa.setQuestionId(target);
  if (field >= 0) pa.initTransform(1)[0].setGetPointerField(static_cast<uint16_t>(field));
  c.setInterfaceId(interfaceId);
  c.setMethodId(methodId);
  auto params = c.initParams();
  if (fill) fill(params.getContent());
  params.initCapTable(0);
}

// A connected Unix stream socket to `path`, or -1.
inline int connectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// True once the peer has closed the connection (EOF or reset); waits at most `timeoutMs`.
// Reads and discards whatever the server sent before.
inline bool waitClosedByPeer(int fd, int timeoutMs) {
  timeval tv{timeoutMs / 1000, (timeoutMs % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET || errno == EPIPE;
  }
}

class RawRpcPeer {
 public:
  // Sends give up after `sendTimeoutMs` (a server that stopped reading must not hang the test).
  explicit RawRpcPeer(int fd, int sendTimeoutMs = 2000) : fd_(fd) {
    timeval tv{sendTimeoutMs / 1000, (sendTimeoutMs % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }
  ~RawRpcPeer() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawRpcPeer(const RawRpcPeer&) = delete;
  RawRpcPeer& operator=(const RawRpcPeer&) = delete;
  int fd() const { return fd_; }

  // Asks for the bootstrap capability as question `questionId`. False once the server is gone.
  bool bootstrap(uint32_t questionId) {
    capnp::MallocMessageBuilder m;
    m.initRoot<capnp::rpc::Message>().initBootstrap().setQuestionId(questionId);
    return send(m);
  }

  // A call on the answer to question `target` (pipelined: the caller does not wait for it).
  // `fill` writes the parameters into the params struct.
  bool call(uint32_t questionId, uint32_t target, uint64_t interfaceId, uint16_t methodId,
            const std::function<void(capnp::AnyPointer::Builder)>& fill = {}) {
    capnp::MallocMessageBuilder m;
    buildCall(m, questionId, target, -1, interfaceId, methodId, fill);
    return send(m);
  }

  // A call on a capability that came back in an answer: question `target`'s result, pointer
  // field `field` of the result struct (pipelined).
  bool callOnResultField(uint32_t questionId, uint32_t target, uint16_t field, uint64_t interfaceId,
                         uint16_t methodId, const std::function<void(capnp::AnyPointer::Builder)>& fill = {}) {
    capnp::MallocMessageBuilder m;
    buildCall(m, questionId, target, field, interfaceId, methodId, fill);
    return send(m);
  }

  // Bytes written so far.
  size_t sent() const { return sent_; }

  // Why the last call, bootstrap or send failed: EAGAIN when nothing of the message went out
  // before the send timeout (retrying it keeps the stream well-formed), anything else when the
  // connection is gone or a message was torn (EPIPE: every later send fails too).
  int lastError() const { return lastError_; }

 private:
  bool send(capnp::MessageBuilder& m) {
    if (torn_) {
      lastError_ = EPIPE;
      return false;
    }
    auto words = capnp::messageToFlatArray(m);
    auto bytes = words.asBytes();
    size_t off = 0;
    int stalls = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.begin() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      const int err = n < 0 ? errno : EPIPE;
      // Once part of a message is out, a send timeout retries the rest (up to 30 timeouts);
      // giving up then leaves a torn message on the stream, so the peer refuses every later send.
      if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK) && off > 0 && ++stalls < 30) continue;
      if (n <= 0) {
        if (off > 0) torn_ = true;
        lastError_ = off > 0 ? EPIPE : err;
        return false;
      }
      off += static_cast<size_t>(n);
    }
    sent_ += bytes.size();
    return true;
  }

  int fd_;
  size_t sent_ = 0;
  int lastError_ = 0;
  bool torn_ = false;
};

}  // namespace capnet::testing

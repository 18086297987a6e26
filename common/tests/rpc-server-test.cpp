// Attacks on the shared RPC socket server: slot hoarding, idle sockets, refused peers and a peer
// that pipelines calls without ever reading the answers. The attacker speaks the wire protocol by
// hand from a thread; the server runs on this thread's KJ loop.
#include <capnp/rpc-twoparty.h>
#include <doctest/doctest.h>

#include "tests/support/temp-dir.h"
#include "tests/support/audit-capture.h"
#include <kj/async-io.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/audit.h"
#include "common/rpc-server.h"
#include "tests/support/hostile-client.h"
#include "tests/support/wait.h"
#include "idl/net.capnp.h"

using namespace capnet;
using namespace capnet::testing;

namespace {

struct TempDir : capnet::testing::TempDir {
  TempDir() : capnet::testing::TempDir("rpc-server-test") {}
};

using Captured = capnet::testing::AuditCapture;

// A NetConnect whose status() answers with `answerBytes` of detail: big answers fill the queue.
class BigAnswers final : public idl::NetConnect::Server {
 public:
  explicit BigAnswers(size_t answerBytes) : detail_(answerBytes, 'x') {}
  kj::Promise<void> status(StatusContext context) override {
    ++calls;
    context.getResults().setStackDetail(detail_);
    return kj::READY_NOW;
  }
  static inline std::atomic<uint64_t> calls{0};

 private:
  std::string detail_;
};

struct Rig {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  TempDir dir;
  std::string path = dir.path + "/s.sock";
  UnixRpcServer server;
  kj::Maybe<kj::Promise<void>> serving;
  std::vector<uid_t> refuse;

  explicit Rig(RpcLimits limits, size_t answerBytes = 64)
      : server(*io.provider, "test", limits, [this, answerBytes](const PeerCredentials& p) -> kj::Maybe<capnp::Capability::Client> {
          for (uid_t u : refuse) {
            if (u == p.uid) {
              audit("test", "refuse-connection", {{"reason", "not-a-principal"}});
              return nullptr;
            }
          }
          return capnp::Capability::Client(idl::NetConnect::Client(kj::heap<BigAnswers>(answerBytes)));
        }) {
    server.bind(path, 0600).wait(io.waitScope);
    serving = server.run().eagerlyEvaluate([](kj::Exception&& e) { FAIL(e.getDescription().cStr()); });
  }
  // Runs the loop until `done` or `ms` pass.
  template <typename F>
  bool runUntil(F done, int ms) {
    return capnet::testing::runUntil(io, done, ms * kj::MILLISECONDS);
  }
  // Whether the server closed `fd`, polling while the loop runs (a blocking read would stall the
  // server, which runs on this thread).
  bool closedByPeer(int fd, int ms) {
    return runUntil([fd] {
      char buf[65536];
      for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0) return true;
        if (n < 0) return errno == ECONNRESET || errno == EPIPE;
      }
    }, ms);
  }
  // A well-behaved client's status() round trip.
  bool statusWorks() {
    auto stream = io.provider->getNetwork().parseAddress(kj::str("unix:", path.c_str())).wait(io.waitScope)->connect().wait(io.waitScope);
    capnp::TwoPartyClient client(*stream);
    auto nc = client.bootstrap().castAs<idl::NetConnect>();
    auto r = kj::runCatchingExceptions([&]() { nc.statusRequest().send().wait(io.waitScope); });
    return r == nullptr;
  }
};

constexpr uint64_t kNetConnect = capnp::typeId<idl::NetConnect>();

}  // namespace

TEST_CASE("one uid cannot hold more connections than its per-uid cap and the refusal is audited") {
  Captured audit;
  RpcLimits limits;
  limits.maxConnectionsPerUid = 3;
  Rig rig(limits);
  std::vector<int> fds;
  for (int i = 0; i < 5; ++i) fds.push_back(connectUnix(rig.path));
  REQUIRE(rig.runUntil([&] { return rig.server.connectionCount(getuid()) == 3; }, 2000));
  rig.runUntil([&] { return audit.count("test: refuse-connection reason=too-many-connections") >= 2; }, 2000);
  CHECK(audit.count("test: refuse-connection reason=too-many-connections uid=" + std::to_string(getuid()) +
                    " limit=per-uid") == 2);
  CHECK(rig.server.connectionCount() == 3);
  // Closing one frees exactly one slot.
  ::close(fds[0]);
  REQUIRE(rig.runUntil([&] { return rig.server.connectionCount(getuid()) == 2; }, 2000));
  CHECK(rig.statusWorks());
  for (size_t i = 1; i < fds.size(); ++i) ::close(fds[i]);
  CHECK(rig.runUntil([&] { return rig.server.connectionCount() == 0; }, 2000));
}

TEST_CASE("a peer the factory refuses gets no bootstrap and is closed at once") {
  Captured audit;
  Rig rig(RpcLimits{});
  rig.refuse.push_back(getuid());
  BigAnswers::calls = 0;
  RawRpcPeer peer(connectUnix(rig.path));
  REQUIRE(peer.fd() >= 0);
  peer.bootstrap(0);
  peer.call(1, 0, kNetConnect, 1);
  CHECK(rig.closedByPeer(peer.fd(), 2000));
  rig.runUntil([&] { return rig.server.connectionCount() == 0; }, 1000);
  CHECK(rig.server.connectionCount() == 0);
  CHECK(audit.count("test: refuse-connection reason=not-a-principal") == 1);
  CHECK(BigAnswers::calls == 0);
}

TEST_CASE("a connection that completes no call before the deadline is closed and its slot freed") {
  Captured audit;
  RpcLimits limits;
  limits.firstCallDeadlineMs = 300;
  Rig rig(limits);
  RawRpcPeer idle(connectUnix(rig.path));
  RawRpcPeer onlyBootstrap(connectUnix(rig.path));
  onlyBootstrap.bootstrap(0);   // a bootstrap alone is not a call.
  RawRpcPeer busy(connectUnix(rig.path));
  busy.bootstrap(0);
  busy.call(1, 0, kNetConnect, 1);
  REQUIRE(rig.runUntil([&] { return rig.server.connectionCount() == 3; }, 1000));
  REQUIRE(rig.runUntil([&] { return rig.server.connectionCount() == 1; }, 3000));
  CHECK(audit.count("test: close-connection reason=no-call-before-deadline") == 2);
  CHECK(rig.closedByPeer(idle.fd(), 1000));
  CHECK(rig.closedByPeer(onlyBootstrap.fd(), 1000));
}

TEST_CASE("a peer that pipelines calls and never reads the answers is cut off, and others are still served") {
  Captured audit;
  RpcLimits limits;
  limits.maxQueuedReplyBytes = 256 * 1024;
  Rig rig(limits, 32 * 1024);   // every answer carries 32 KiB.
  BigAnswers::calls = 0;
  std::atomic<bool> stopped{false};
  std::atomic<size_t> sentBytes{0};
  int fd = connectUnix(rig.path);
  REQUIRE(fd >= 0);
  std::thread attacker([&] {
    RawRpcPeer peer(fd, 500);
    peer.bootstrap(0);
    // Each call is a few dozen bytes; its answer is 32 KiB. 20000 of them would be 640 MiB of
    // answers if the server kept them.
    for (uint32_t q = 1; q <= 20000 && peer.call(q, 0, kNetConnect, 1); ++q) {}
    sentBytes = peer.sent();
    stopped = true;
  });
  bool cut = rig.runUntil([&] { return audit.count("test: close-connection reason=peer-not-reading") == 1; }, 10000);
  rig.runUntil([&] { return stopped.load(); }, 10000);
  attacker.join();
  CHECK(cut);
  // The server answered at most what fits in its queue plus the socket buffers before cutting.
  CHECK(BigAnswers::calls < 64);
  MESSAGE("attacker sent " << sentBytes.load() << " bytes; server answered " << BigAnswers::calls.load()
                           << " calls before closing the connection");
  REQUIRE(rig.runUntil([&] { return rig.server.connectionCount() == 0; }, 2000));
  CHECK(rig.statusWorks());
}

TEST_CASE("a peer that never finishes its questions is cut off before the kept answers add up") {
  Captured audit;
  RpcLimits limits;
  limits.maxOpenQuestions = 64;
  Rig rig(limits, 16);   // small answers: the write queue alone would take long to fill.
  BigAnswers::calls = 0;
  std::atomic<bool> stopped{false};
  int fd = connectUnix(rig.path);
  REQUIRE(fd >= 0);
  std::thread attacker([&] {
    RawRpcPeer peer(fd, 500);
    peer.bootstrap(0);
    for (uint32_t q = 1; q <= 5000 && peer.call(q, 0, kNetConnect, 1); ++q) {}
    stopped = true;
  });
  bool cut = rig.runUntil([&] { return audit.count("test: close-connection reason=too-many-open-questions") == 1; }, 10000);
  rig.runUntil([&] { return stopped.load(); }, 10000);
  attacker.join();
  CHECK(cut);
  CHECK(BigAnswers::calls <= 66);
  REQUIRE(rig.runUntil([&] { return rig.server.connectionCount() == 0; }, 2000));
  CHECK(rig.statusWorks());
}

TEST_CASE("a well-behaved client that pipelines hundreds of calls and finishes them is served") {
  Captured audit;
  RpcLimits limits;
  limits.maxOpenQuestions = 64;
  Rig rig(limits);
  auto stream = rig.io.provider->getNetwork().parseAddress(kj::str("unix:", rig.path.c_str())).wait(rig.io.waitScope)
                    ->connect().wait(rig.io.waitScope);
  capnp::TwoPartyClient client(*stream);
  auto nc = client.bootstrap().castAs<idl::NetConnect>();
  for (int round = 0; round < 10; ++round) {
    kj::Vector<kj::Promise<void>> calls;
    for (int i = 0; i < 50; ++i) calls.add(nc.statusRequest().send().ignoreResult());
    kj::joinPromises(calls.releaseAsArray()).wait(rig.io.waitScope);
  }
  CHECK(audit.count("test: close-connection") == 0);
}

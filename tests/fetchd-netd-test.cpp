// fetchd's real backend end to end on the host: capd (a fake broker that mints), netd (the real
// server, its TCP stack replaced by in-memory connections to a scripted HTTP server), fetchd's
// KJ HTTP client over netd's ByteStream.
#include <doctest/doctest.h>

#include <kj/async-io.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/audit.h"
#include "common/rpc-server.h"
#include "fetchd/fetch-client.h"
#include "fetchd/fetchd.h"
#include "idl/cap.capnp.h"
#include "netd/memory-connection.h"
#include "netd/server/netd-server.h"
#include "tests/support/audit-capture.h"
#include "tests/support/memory-stack.h"
#include "tests/support/minting-broker.h"
#include "tests/support/netd-control.h"
#include "tests/support/temp-dir.h"

using namespace capnet;

namespace {

constexpr uint8_t kTicketByte = 0x77;   // the ticket the app "got from capd".

// The origin server: answers one request per connection by path.
class HttpStack final : public capnet::testing::MemoryStack {
 public:
  std::vector<std::string> requestLines;
  // The most streams netd held open at the moment of a connect (fetchd must close each redirect
  // hop's connection before it opens the next).
  Netd* netd = nullptr;
  size_t openAtConnect = 0;
  kj::Promise<Connected> connect(uint32_t, uint16_t, uint32_t) override {
    if (netd != nullptr) openAtConnect = std::max(openAtConnect, netd->liveStreams());
    return httpPeer([this](const std::string& head) {
      std::string line = head.substr(0, head.find("\r\n"));
      requestLines.push_back(line);
      std::string path = line.substr(line.find(' ') + 1);
      return respond(path.substr(0, path.find(' ')));
    });
  }

  static std::string respond(const std::string& path) {
    if (path == "/") return "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\r\nhello\n";
    if (path == "/chunked") {
      return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nchunk\r\n3\r\ned!\r\n0\r\n\r\n";
    }
    if (path == "/big") return "HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n";
    if (path == "/bigchunked") {
      std::string s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
      std::string piece(4096, 'z');
      for (int i = 0; i < 40; ++i) s += "1000\r\n" + piece + "\r\n";
      return s + "0\r\n\r\n";
    }
    if (path == "/redirect-same") return "HTTP/1.1 302 Found\r\nLocation: /chunked\r\nContent-Length: 0\r\n\r\n";
    if (path == "/redirect-loop") return "HTTP/1.1 302 Found\r\nLocation: http://devnet.test/redirect-loop\r\nContent-Length: 0\r\n\r\n";
    if (path == "/redirect-cross") return "HTTP/1.1 302 Found\r\nLocation: https://other.test/\r\nContent-Length: 0\r\n\r\n";
    if (path == "/hugeheader") return "HTTP/1.1 200 OK\r\nX-Big: " + std::string(20000, 'h') + "\r\nContent-Length: 0\r\n\r\n";
    return "NOT HTTP AT ALL\r\n\r\n";
  }
};

struct Rig {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  capnet::testing::TempDir tmp{"fetchd-real"};
  std::string dir;
  FakeClock clock{0};
  HttpStack stack;
  capnet::testing::MintingPolicy minting;
  Netd netd;
  kj::Maybe<capnp::Capability::Client> control;
  UnixRpcServer capdServer, netdServer;
  kj::Maybe<kj::Promise<void>> a, b;
  HttpStub stub{"/nonexistent"};
  kj::Own<Fetchd> fetchd;

  Rig()
      : netd(clock, io.provider->getTimer(), stack, getuid()),
        capdServer(*io.provider, "capd", RpcLimits{},
                   [this](const PeerCredentials&) {
                     return kj::Maybe<capnp::Capability::Client>(
                         capnp::Capability::Client(kj::heap<capnet::testing::MintingBroker>(minting)));
                   }),
        netdServer(*io.provider, "netd", RpcLimits{}, [this](const PeerCredentials& p) {
          return kj::Maybe<capnp::Capability::Client>(capnp::Capability::Client(netd.netConnectFor(p.uid)));
        }) {
    dir = tmp.path;
    stack.netd = &netd;
    control = capnet::testing::grantHttpDevnet(netd, getuid(), getuid(), minting.tokenByte);
    capdServer.bind(dir + "/capd.sock", 0600).wait(io.waitScope);
    netdServer.bind(dir + "/netd.sock", 0600).wait(io.waitScope);
    a = capdServer.run().eagerlyEvaluate(nullptr);
    b = netdServer.run().eagerlyEvaluate(nullptr);
    FetchLimits limits;
    limits.maxBodyBytes = 8u << 20;
    fetchd = kj::heap<Fetchd>(*io.provider, io.provider->getTimer(), FetchdPaths{dir + "/capd.sock", dir + "/netd.sock"},
                              stub, limits);
  }

  struct Out {
    bool refused = false;
    idl::FetchRefusal reason = idl::FetchRefusal::INTERNAL;
    idl::ConnectRefusal netReason = idl::ConnectRefusal::INTERNAL;
    uint16_t status = 0;
    std::string body, backend;
  };
  Out fetch(const std::string& url, bool withTicket = true) {
    Out o;
    auto req = fetchd->fetcherFor(getuid()).fetchRequest();
    req.initRequest().setUrl(url);
    if (withTicket) {
      auto t = req.getRequest().initTicket(16);
      std::fill(t.begin(), t.end(), kTicketByte);
    }
    req.setSink(kj::heap<BodyCollector>(BodyCollector::Into{.body = &o.body}));
    auto resp = req.send().wait(io.waitScope);
    auto r = resp.getResult();
    if (r.isRefused()) {
      o.refused = true;
      o.reason = r.getRefused().getReason();
      o.netReason = r.getRefused().getConnectReason();
    } else {
      o.status = r.getResponse().getStatus();
      o.backend = r.getResponse().getBackend();
    }
    return o;
  }
};

}  // namespace

TEST_CASE("real backend: a Content-Length response arrives whole through netd, and the fragment is not sent") {
  Rig rig;
  auto o = rig.fetch("http://devnet.test/#fragment");
  REQUIRE_FALSE(o.refused);
  CHECK(o.status == 200);
  CHECK(o.body == "hello\n");
  CHECK(o.backend == "netd");
  REQUIRE(rig.stack.requestLines.size() == 1);
  CHECK(rig.stack.requestLines[0] == "GET / HTTP/1.1");
}

TEST_CASE("real backend: a chunked body is decoded") {
  Rig rig;
  auto o = rig.fetch("http://devnet.test/chunked");
  REQUIRE_FALSE(o.refused);
  CHECK(o.body == "chunked!");
}

TEST_CASE("real backend: an announced body over the cap is refused before reading, never truncated") {
  Rig rig;
  auto o = rig.fetch("http://devnet.test/big");
  CHECK(o.refused);
  CHECK(o.reason == idl::FetchRefusal::BODY_TOO_LARGE);
}

TEST_CASE("real backend: a chunked body that grows over the cap is refused as too large") {
  Rig rig;
  auto req = rig.fetchd->fetcherFor(getuid()).fetchRequest();
  req.initRequest().setUrl("http://devnet.test/bigchunked");
  req.getRequest().setMaxBodyBytes(100000);
  auto ticket = req.getRequest().initTicket(16);
  std::fill(ticket.begin(), ticket.end(), kTicketByte);
  std::string body;
  req.setSink(kj::heap<BodyCollector>(BodyCollector::Into{.body = &body}));
  auto resp = req.send().wait(rig.io.waitScope);
  REQUIRE(resp.getResult().isRefused());
  CHECK(resp.getResult().getRefused().getReason() == idl::FetchRefusal::BODY_TOO_LARGE);
  CHECK(body.size() <= 100000);
}

TEST_CASE("real backend: a same-host redirect is followed and a redirect loop stops at the limit") {
  Rig rig;
  auto o = rig.fetch("http://devnet.test/redirect-same");
  REQUIRE_FALSE(o.refused);
  CHECK(o.body == "chunked!");
  REQUIRE(rig.stack.requestLines.size() == 2);
  CHECK(rig.stack.requestLines[1] == "GET /chunked HTTP/1.1");
  auto loop = rig.fetch("http://devnet.test/redirect-loop");
  CHECK(loop.reason == idl::FetchRefusal::TOO_MANY_REDIRECTS);
  CHECK(rig.stack.requestLines.size() == 2 + 6);   // the first request and 5 redirects
}

TEST_CASE("real backend: a cross-host redirect is refused with its marker") {
  Rig rig;
  capnet::testing::AuditCapture audit;
  auto o = rig.fetch("http://devnet.test/redirect-cross");
  CHECK(o.reason == idl::FetchRefusal::CROSS_HOST_REDIRECT);
  CHECK(audit.has("fetchd: deny host=devnet.test reason=cross-host-redirect"));
}

TEST_CASE("real backend: an oversized header and a malformed response are refused without a crash") {
  Rig rig;
  CHECK(rig.fetch("http://devnet.test/hugeheader").refused);
  auto bad = rig.fetch("http://devnet.test/garbage");
  CHECK(bad.refused);
  CHECK(bad.reason == idl::FetchRefusal::BAD_RESPONSE);
}

TEST_CASE("real backend: a host outside the grant's scope is refused by netd and reported as connect-failed") {
  Rig rig;
  auto o = rig.fetch("http://other.test/");
  CHECK(o.refused);
  CHECK(o.reason == idl::FetchRefusal::CONNECT_FAILED);
  CHECK(o.netReason == idl::ConnectRefusal::OUT_OF_SCOPE);   // netd's typed reason travels with the refusal
  CHECK(rig.fetch("http://devnet.test/redirect-cross").netReason == idl::ConnectRefusal::INTERNAL);   // not a connect failure
}

TEST_CASE("real backend: network.http limits from capd's policy change what fetchd accepts") {
  Rig rig;
  // maxBodyBytes: "hello\n" is 6 bytes.
  rig.minting.maxBodyBytes = 5;
  CHECK(rig.fetch("http://devnet.test/").reason == idl::FetchRefusal::BODY_TOO_LARGE);
  rig.minting.maxBodyBytes = 6;
  CHECK_FALSE(rig.fetch("http://devnet.test/").refused);
  rig.minting.maxBodyBytes = 0;
  // maxRedirects (0 also when redirects are "none"): the same-host redirect is no longer followed.
  rig.minting.maxRedirects = 0;
  CHECK(rig.fetch("http://devnet.test/redirect-same").reason == idl::FetchRefusal::TOO_MANY_REDIRECTS);
  rig.minting.maxRedirects = 5;
  CHECK_FALSE(rig.fetch("http://devnet.test/redirect-same").refused);
  // maxHeaderBytes: "/"'s two headers are about 50 bytes.
  rig.minting.maxHeaderBytes = 40;
  CHECK(rig.fetch("http://devnet.test/").reason == idl::FetchRefusal::HEADER_TOO_LARGE);
  rig.minting.maxHeaderBytes = 0;
  CHECK_FALSE(rig.fetch("http://devnet.test/").refused);
}

TEST_CASE("real backend: without the app's ticket fetchd gets no grant and fetches nothing") {
  Rig rig;
  rig.minting.grantRequests = 0;
  auto o = rig.fetch("http://devnet.test/", false);
  CHECK(o.refused);
  CHECK(o.reason == idl::FetchRefusal::NO_CAP);
  CHECK(rig.minting.grantRequests == 1);
  CHECK(rig.stack.requestLines.empty());
}

TEST_CASE("real backend: a redirect hop reuses the grant and its connection is closed before the next opens") {
  Rig rig;
  rig.minting.grantRequests = 0;
  auto o = rig.fetch("http://devnet.test/redirect-same");
  REQUIRE_FALSE(o.refused);
  CHECK(o.body == "chunked!");
  CHECK(rig.stack.requestLines.size() == 2);
  CHECK(rig.minting.grantRequests == 1);   // one ticket, one grant, every hop of the same origin.
  CHECK(rig.stack.openAtConnect == 0);        // no stream of the first hop was open at the second connect.
  rig.stack.openAtConnect = 0;
  auto loop = rig.fetch("http://devnet.test/redirect-loop");
  CHECK(loop.reason == idl::FetchRefusal::TOO_MANY_REDIRECTS);
  CHECK(rig.stack.openAtConnect == 0);
}

TEST_CASE("real backend: a fetch gives its grant back when it ends, answered or refused (live grants count fetches in flight)") {
  Rig rig;
  rig.minting.revokes = 0;
  rig.minting.grantRequests = 0;
  CHECK_FALSE(rig.fetch("http://devnet.test/").refused);
  CHECK(rig.minting.revokes == 1);
  CHECK(rig.fetch("http://devnet.test/redirect-cross").refused);   // refused after the grant was used
  CHECK(rig.minting.revokes == 2);
  CHECK_FALSE(rig.fetch("http://devnet.test/redirect-same").refused);   // every hop, one grant, one revoke
  CHECK(rig.minting.revokes == 3);
  CHECK(rig.minting.grantRequests == 3);
}

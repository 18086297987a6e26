// Scenarios that exercise netd directly (and capd's grants): the devnet gate, real TCP through
// lwIP over the VFIO-owned NIC, and the four no-capability refusals.
#include <capnp/schema.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>
#include <string>

#include "tests/support/hostile-client.h"
#include "common/file.h"
#include "common/unix-connect.h"
#include "fetchd/fetch-client.h"
#include "idl/names.h"
#include "selftest/selftest.h"

namespace capnet::selftest {

bool fileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string refusalName(idl::ConnectRefusal r) { return std::string(enumName(r)); }

namespace {

constexpr const char* kFixtureHost = "devnet.test";
constexpr uint16_t kEchoPort = 7;

Report fail(std::string why) { return Report{Outcome::kFail, std::move(why)}; }


struct Connect {
  bool connected = false;
  idl::ConnectRefusal reason = idl::ConnectRefusal::INTERNAL;
  std::string detail;
  kj::Maybe<idl::ByteStream::Client> stream;
};

Connect connect(Context& ctx, Session& netd, kj::ArrayPtr<const kj::byte> token, const char* host, uint16_t port) {
  auto req = netd.as<idl::NetConnect>().connectRequest();
  req.setGrant(token);
  req.setHost(host);
  req.setPort(port);
  auto resp = req.send().wait(ctx.io.waitScope);
  Connect c;
  auto r = resp.getResult();
  if (r.isConnected()) {
    c.connected = true;
    c.stream = r.getConnected().getStream();
  } else {
    c.reason = r.getRefused().getReason();
    c.detail = r.getRefused().getDetail();
  }
  return c;
}

struct Fetched {
  bool refused = false;
  idl::FetchRefusal reason = idl::FetchRefusal::INTERNAL;
  idl::ConnectRefusal netReason = idl::ConnectRefusal::INTERNAL;   // for connect and TLS failures
  std::string detail, body, backend;
  uint16_t status = 0;
  bool complete = false;
  std::string error;   // fetchd unreachable
};

Fetched fetchAs(Context& ctx, uid_t as, const char* url, uint64_t maxBodyBytes = 0) {
  Fetched f;
  Session fetchd(ctx.io, ctx.paths.fetchd, as);
  if (!fetchd.ok()) {
    f.error = fetchd.error();
    return f;
  }
  // The principal asks capd for a ticket naming fetchd, as every app does for a real host.
  kj::Array<kj::byte> ticket;
  {
    Session capd(ctx.io, ctx.paths.capd, as);
    if (capd.ok()) ticket = fetchTicket(capd.as<idl::Broker>(), url).wait(ctx.io.waitScope);
  }
  auto req = fetchd.as<idl::Fetcher>().fetchRequest();
  auto r0 = req.initRequest();
  r0.setUrl(url);
  r0.setMaxBodyBytes(maxBodyBytes);
  r0.setTicket(ticket);
  req.setSink(kj::heap<BodyCollector>(BodyCollector::Into{.body = &f.body, .status = &f.status, .done = &f.complete}));
  auto resp = req.send().wait(ctx.io.waitScope);
  auto r = resp.getResult();
  if (r.isRefused()) {
    f.refused = true;
    f.reason = r.getRefused().getReason();
    f.netReason = r.getRefused().getConnectReason();
    f.detail = r.getRefused().getDetail();
  } else {
    f.backend = r.getResponse().getBackend();
  }
  return f;
}

// The default path: a fixture fetch through fetchd and httpstubd, as the `app` principal.
Report webFetch(Context& ctx) {
  auto f = fetchAs(ctx, kAppUid, "http://fixture.local/index.html");
  if (!f.error.empty()) return fail(f.error);
  if (f.refused) return fail("fetchd refused the fixture fetch: " + f.detail);
  if (f.status != 200 || !f.complete || f.backend != "httpstubd") return fail("unexpected fixture response");
  if (f.body.find("httpstubd") == std::string::npos) return fail("fixture body differs from pkg://fixtures/web/index.html");
  return Report{Outcome::kOk, "bytes=" + std::to_string(f.body.size())};
}

// A real http fetch through fetchd -> capd grant -> netd -> lwIP -> the VFIO NIC -> the host fixture.
Report httpFetch(Context& ctx) {
  auto f = fetchAs(ctx, kSelftestUid, "http://devnet.test/");
  if (!f.error.empty()) return fail(f.error);
  if (f.refused) return fail("refused: " + f.detail);
  if (f.status != 200 || !f.complete || f.backend != "netd") return fail("unexpected response");
  if (f.body != "capnet devnet fixture\n") return fail("body differs from the fixture's");
  return Report{Outcome::kOk, "bytes=" + std::to_string(f.body.size())};
}

Report redirects(Context& ctx, const std::string& origin, const std::string& body) {
  auto same = fetchAs(ctx, kSelftestUid, (origin + "/redirect-same").c_str());
  if (same.refused || same.body != body) return fail("same-host redirect not followed: " + same.detail);
  auto cross = fetchAs(ctx, kSelftestUid, (origin + "/redirect-cross").c_str());
  if (!cross.refused || cross.reason != idl::FetchRefusal::CROSS_HOST_REDIRECT) return fail("cross-host redirect not refused");
  return Report{Outcome::kOk, ""};
}

Report httpRedirects(Context& ctx) { return redirects(ctx, "http://devnet.test", "capnet devnet fixture\n"); }
Report httpsRedirects(Context& ctx) { return redirects(ctx, "https://devnet.test", "capnet devnet fixture over TLS\n"); }

// A body over the request's limit is refused as too large, never handed over truncated.
Report httpsBodyCap(Context& ctx) {
  auto f = fetchAs(ctx, kSelftestUid, "https://devnet.test/", 8);
  if (!f.error.empty()) return fail(f.error);
  if (!f.refused || f.reason != idl::FetchRefusal::BODY_TOO_LARGE) return fail("an 8-byte body cap was not enforced");
  if (f.complete) return fail("the sink was told the body was complete");
  return Report{Outcome::kOk, ""};
}

// `app` holds net.http.fetch but not net.http.devnet: the fixture path only.
Report noDevnetCap(Context& ctx, const char* url) {
  auto f = fetchAs(ctx, kAppUid, url);
  if (!f.error.empty()) return fail(f.error);
  if (!f.refused) return fail("a principal without net.http.devnet fetched a real host");
  if (f.reason != idl::FetchRefusal::NO_CAP) return fail("refused for another reason: " + f.detail);
  return Report{Outcome::kOk, ""};
}
Report httpNoCap(Context& ctx) { return noDevnetCap(ctx, "http://devnet.test/"); }

// URLs fetchd does not handle are refused with the part named, before anything connects.
Report urlDeny(Context& ctx) {
  auto scheme = fetchAs(ctx, kSelftestUid, "ftp://devnet.test/");
  if (!scheme.refused || scheme.reason != idl::FetchRefusal::SCHEME) return fail("ftp:// was not refused as scheme");
  auto userinfo = fetchAs(ctx, kSelftestUid, "https://user@devnet.test/");
  if (!userinfo.refused || userinfo.reason != idl::FetchRefusal::BAD_URL) return fail("userinfo was not refused as bad-url");
  return Report{Outcome::kOk, ""};
}
Report httpsNoCap(Context& ctx) { return noDevnetCap(ctx, "https://devnet.test/"); }

// A real HTTPS fetch: fetchd -> capd grant -> netd -> wolfSSL (TLS 1.3, roots from pkg://trust/)
// over lwIP over the VFIO NIC -> the host's tls-fixture.
Report httpsFetch(Context& ctx) {
  auto f = fetchAs(ctx, kSelftestUid, "https://devnet.test/");
  if (!f.error.empty()) return fail(f.error);
  if (f.refused) return fail("refused: " + f.detail);
  if (f.status != 200 || !f.complete || f.backend != "netd") return fail("unexpected response");
  if (f.body != "capnet devnet fixture over TLS\n") return fail("body differs from the fixture's");
  return Report{Outcome::kOk, ""};
}

// Each bad certificate refused with its own reason (fixtures on ports 444..447).
Report tlsDeny(Context& ctx) {
  struct Case {
    uint16_t port;
    const char* what;
    idl::ConnectRefusal want;
  } cases[] = {
      {444, "expired", idl::ConnectRefusal::TLS_EXPIRED},
      {445, "wrong host", idl::ConnectRefusal::TLS_HOSTNAME_MISMATCH},
      {446, "untrusted issuer", idl::ConnectRefusal::TLS_UNTRUSTED_ISSUER},
      {447, "not yet valid", idl::ConnectRefusal::TLS_NOT_YET_VALID},
  };
  Session netd(ctx.io, ctx.paths.netd, kSelftestUid);
  if (!netd.ok()) return fail(netd.error());
  for (auto& c : cases) {
    auto g = requestGrant(ctx, kSelftestUid, "tls", kFixtureHost, c.port);
    if (!g.ok) return fail(std::string(c.what) + ": no grant: " + g.refusal);
    auto req = netd.as<idl::NetConnect>().connectRequest();
    req.setGrant(g.token);
    req.setHost(kFixtureHost);
    req.setPort(c.port);
    req.setUseTls(true);
    auto resp = req.send().wait(ctx.io.waitScope);
    auto r = resp.getResult();
    if (r.isConnected()) return fail(std::string(c.what) + ": the handshake succeeded");
    if (r.getRefused().getReason() != c.want) {
      return fail(std::string(c.what) + ": refused as " + refusalName(r.getRefused().getReason()) + " (" +
                  r.getRefused().getDetail().cStr() + "), expected " + refusalName(c.want));
    }
  }
  return Report{Outcome::kOk, ""};
}

// ---- trust-persist: install a root through capd, reboot, and have it trusted -----------------------

constexpr uint16_t kPersistPort = 448;   // tls-fixture presenting a leaf signed by the installed root

idl::ConnectRefusal tlsConnect(Context& ctx, uint16_t port, std::string& detail) {
  auto g = requestGrant(ctx, kSelftestUid, "tls", kFixtureHost, port);
  if (!g.ok) {
    detail = "no grant: " + g.refusal;
    return idl::ConnectRefusal::INTERNAL;
  }
  Session netd(ctx.io, ctx.paths.netd, kSelftestUid);
  auto req = netd.as<idl::NetConnect>().connectRequest();
  req.setGrant(g.token);
  req.setHost(kFixtureHost);
  req.setPort(port);
  req.setUseTls(true);
  auto resp = req.send().wait(ctx.io.waitScope);
  if (resp.getResult().isConnected()) {
    detail = "connected";
    return idl::ConnectRefusal::INTERNAL;   // callers check `detail`
  }
  detail = resp.getResult().getRefused().getDetail();
  return resp.getResult().getRefused().getReason();
}

// A file of the image or the state disk (a PEM, a config): empty when it cannot be read.
std::string readPkgFile(const std::string& path) {
  auto read = readFileBounded(path, 1 << 20);
  return read.ok() ? std::move(read).value() : std::string();
}

Report trustInstall(Context& ctx) {
  std::string detail;
  // Before: the server's chain ends at a root nobody trusts yet.
  if (tlsConnect(ctx, kPersistPort, detail) != idl::ConnectRefusal::TLS_UNTRUSTED_ISSUER) {
    return fail("before installing, expected untrusted-issuer, got: " + detail);
  }
  std::string pem = readPkgFile("/pkg/fixtures/trust/persist-root.pem");
  if (pem.empty()) return fail("no /pkg/fixtures/trust/persist-root.pem");
  Session capd(ctx.io, ctx.paths.capd, kSelftestUid);
  if (!capd.ok()) return fail(capd.error());
  auto add = capd.as<idl::TrustManager>().addRequest();
  add.setPem(kj::arrayPtr(reinterpret_cast<const kj::byte*>(pem.data()), pem.size()));
  auto r = add.send().wait(ctx.io.waitScope);
  if (!r.getAdded()) return fail(std::string("install refused: ") + r.getError().cStr());
  return Report{Outcome::kOk, ""};
}

Report trustNoCap(Context& ctx) {
  std::string pem = readPkgFile("/pkg/fixtures/trust/persist-root.pem");
  Session capd(ctx.io, ctx.paths.capd, kAppUid);
  if (!capd.ok()) return fail(capd.error());
  auto add = capd.as<idl::TrustManager>().addRequest();
  add.setPem(kj::arrayPtr(reinterpret_cast<const kj::byte*>(pem.data()), pem.size()));
  std::string outcome = add.send().then([](auto&&) { return std::string("accepted"); },
                                        [](kj::Exception&& e) { return std::string(e.getDescription().cStr()); })
                            .wait(ctx.io.waitScope);
  if (outcome.find("permission denied: TrustManager.add requires net.trust.manage") == std::string::npos) {
    return fail("app (no net.trust.manage) was not refused: " + outcome);
  }
  return Report{Outcome::kOk, ""};
}

Report trustPersisted(Context& ctx) {
  Session capd(ctx.io, ctx.paths.capd, kSelftestUid);
  if (!capd.ok()) return fail(capd.error());
  auto listed = capd.as<idl::TrustManager>().listRequest().send().wait(ctx.io.waitScope);
  bool installed = false;
  for (auto r : listed.getRoots()) installed = installed || std::string(r.getOrigin().cStr()) == "state";
  if (!installed) return fail("no installed root after the reboot");
  std::string detail;
  tlsConnect(ctx, kPersistPort, detail);
  if (detail != "connected") return fail("the installed root did not make the chain trusted: " + detail);
  return Report{Outcome::kOk, ""};
}

bool stackUp(Context& ctx, std::string& detail) {
  Session netd(ctx.io, ctx.paths.netd, kSelftestUid);
  if (!netd.ok()) {
    detail = netd.error();
    return false;
  }
  auto st = netd.as<idl::NetConnect>().statusRequest().send().wait(ctx.io.waitScope);
  detail = st.getStackDetail();
  return st.getStackUp();
}

// devnet off: capd refuses the grant and netd refuses the connect, each for devnet-off.
Report devnetOffDeny(Context& ctx) {
  Session capd(ctx.io, ctx.paths.capd, kSelftestUid);
  if (!capd.ok()) return fail(capd.error());
  auto st = capd.as<idl::Broker>().statusRequest().send().wait(ctx.io.waitScope);
  if (st.getDevnetEnabled()) return fail("capd reports devnet on in the devnet-off profile");
  auto g = requestGrant(ctx, kSelftestUid, "tcp", kFixtureHost, kEchoPort);
  if (g.ok) return fail("capd minted a grant while devnet is off");
  if (g.refusal.rfind("devnet-off", 0) != 0) return fail("capd refused for another reason: " + g.refusal);
  Session netd(ctx.io, ctx.paths.netd, kSelftestUid);
  if (!netd.ok()) return fail(netd.error());
  // Even holding every capability the principal can hold, a real connect is denied.
  auto c = connect(ctx, netd, nullptr, kFixtureHost, kEchoPort);
  if (c.connected) return fail("netd connected while devnet is off");
  if (c.reason != idl::ConnectRefusal::DEVNET_OFF) return fail("netd refused with " + refusalName(c.reason));
  // And through fetchd: an https fetch is refused for devnet-off before anything connects.
  auto f = fetchAs(ctx, kSelftestUid, "https://devnet.test/");
  if (!f.error.empty()) return fail(f.error);
  if (!f.refused) return fail("fetchd fetched https://devnet.test/ while devnet is off");
  if (f.reason != idl::FetchRefusal::DEVNET_OFF) return fail("fetchd refused for another reason: " + f.detail);
  return Report{Outcome::kOk, ""};
}

Report noStackPlaceholder(Context& ctx) {
  std::string detail;
  if (stackUp(ctx, detail)) return fail("netd reports a network stack in the no-stack profile");
  return Report{Outcome::kPlaceholder, "no-os-stack"};
}

// Bytes both ways through lwIP over the VFIO-owned NIC to the host's echo fixture.
Report tcpExchange(Context& ctx) {
  std::string detail;
  if (!stackUp(ctx, detail)) return Report{Outcome::kPlaceholder, "no-os-stack"};
  auto g = requestGrant(ctx, kSelftestUid, "tcp", kFixtureHost, kEchoPort);
  if (!g.ok) return fail("no grant: " + g.refusal);
  Session netd(ctx.io, ctx.paths.netd, kSelftestUid);
  if (!netd.ok()) return fail(netd.error());
  auto c = connect(ctx, netd, g.token, kFixtureHost, kEchoPort);
  if (!c.connected) return fail("connect refused: " + refusalName(c.reason) + " " + c.detail);
  auto stream = KJ_ASSERT_NONNULL(c.stream);
  constexpr size_t kTotal = 256 * 1024;
  std::string sent, got;
  uint32_t x = 0x12345678;
  for (size_t i = 0; i < kTotal; ++i) {
    x = x * 1103515245u + 12345u;
    sent.push_back(static_cast<char>(x >> 24));
  }
  size_t off = 0;
  while (off < sent.size() || got.size() < sent.size()) {
    kj::Maybe<kj::Promise<void>> writing;
    if (off < sent.size()) {
      size_t n = std::min<size_t>(16384, sent.size() - off);
      auto w = stream.writeRequest();
      w.setData(kj::arrayPtr(reinterpret_cast<const kj::byte*>(sent.data() + off), n));
      writing = w.send().ignoreResult();
      off += n;
    }
    if (got.size() < off) {
      auto r = stream.readRequest();
      r.setMaxBytes(65536);
      auto resp = r.send().wait(ctx.io.waitScope);
      if (resp.getEof()) return fail("echo ended after " + std::to_string(got.size()) + " bytes");
      got.append(reinterpret_cast<const char*>(resp.getData().begin()), resp.getData().size());
    }
    KJ_IF_MAYBE(w, writing) { w->wait(ctx.io.waitScope); }
  }
  if (got != sent) return fail("echoed bytes differ from the bytes sent");
  stream.shutdownWriteRequest().send().wait(ctx.io.waitScope);
  auto r = stream.readRequest();
  r.setMaxBytes(1);
  if (!r.send().wait(ctx.io.waitScope).getEof()) return fail("no EOF after half-close");
  return Report{Outcome::kOk, "bytes=" + std::to_string(sent.size())};
}

// The four refusals: no grant, a forged grant, another uid's grant, a host outside the scope.
Report noCapDeny(Context& ctx) {
  std::string detail;
  if (!stackUp(ctx, detail)) return Report{Outcome::kPlaceholder, "no-os-stack"};
  auto g = requestGrant(ctx, kSelftestUid, "tcp", kFixtureHost, kEchoPort);
  if (!g.ok) return fail("no grant: " + g.refusal);
  Session mine(ctx.io, ctx.paths.netd, kSelftestUid);
  Session theirs(ctx.io, ctx.paths.netd, kFetchdUid);   // holds net.tcp.connect, not this grant.
  Session app(ctx.io, ctx.paths.netd, kAppUid);         // lacks net.tcp.connect.
  if (!mine.ok() || !theirs.ok() || !app.ok()) return fail("cannot reach netd");
  // netd's gate decides from capd's announced facts: app never reaches connect at all.
  {
    auto req = app.as<idl::NetConnect>().connectRequest();
    req.setGrant(g.token);
    req.setHost(kFixtureHost);
    req.setPort(kEchoPort);
    std::string refused;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { req.send().wait(ctx.io.waitScope); })) {
      refused = e->getDescription().cStr();
    }
    if (refused.find("permission denied: NetConnect.connect requires net.tcp.connect") == std::string::npos) {
      return fail("app (without net.tcp.connect) was not refused at netd's gate: " + refused);
    }
  }
  kj::byte forged[16];
  for (size_t i = 0; i < sizeof(forged); ++i) forged[i] = static_cast<kj::byte>(g.token[i] ^ 0x5a);
  struct Case {
    const char* what;
    Session& as;
    kj::ArrayPtr<const kj::byte> token;
    const char* host;
    idl::ConnectRefusal want;
  } cases[] = {
      {"no grant", mine, nullptr, kFixtureHost, idl::ConnectRefusal::NO_CAP},
      {"forged grant", mine, kj::arrayPtr(forged, sizeof(forged)), kFixtureHost, idl::ConnectRefusal::NO_CAP},
      {"another uid's grant", theirs, g.token, kFixtureHost, idl::ConnectRefusal::WRONG_UID},
      {"host outside the scope", mine, g.token, "other.test", idl::ConnectRefusal::OUT_OF_SCOPE},
  };
  for (auto& c : cases) {
    auto out = connect(ctx, c.as, c.token, c.host, kEchoPort);
    if (out.connected) return fail(std::string(c.what) + ": connected");
    if (out.reason != c.want) {
      return fail(std::string(c.what) + ": refused as " + refusalName(out.reason) + ", expected " + refusalName(c.want));
    }
  }
  return Report{Outcome::kOk, ""};
}

// ---- The hostile profile: attacks from `app` and from a uid in no policy, each containment
// observed by the attacking client itself, while the selftest principal's real fetch succeeds. ----

constexpr uid_t kStrangerUid = 1200;   // in no policy.
constexpr uid_t kAdminUid = 1102;      // net.dev.enable: may reload the config.
constexpr const char* kStateConfig = "/state/config/network.json";

// The calling client's view of one call: ok, or the failure text.
template <typename P>
std::string outcome(P&& promise, kj::WaitScope& ws) {
  std::string out = "ok";
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { promise.wait(ws); })) { out = e->getDescription().cStr(); }
  return out;
}

bool writeConfig(const std::string& json) {
  std::string tmp = std::string(kStateConfig) + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return false;
  bool ok = std::fwrite(json.data(), 1, json.size(), f) == json.size();
  ok = std::fclose(f) == 0 && ok;
  return ok && std::rename(tmp.c_str(), kStateConfig) == 0;
}

// admin asks capd to reload the state config.
bool reloadAsAdmin(Context& ctx, std::string& why) {
  Session capd(ctx.io, ctx.paths.capd, kAdminUid);
  if (!capd.ok()) {
    why = capd.error();
    return false;
  }
  auto r = capd.as<idl::Broker>().reloadRequest().send().wait(ctx.io.waitScope);
  if (!r.getApplied()) {
    why = "reload not applied";
    for (auto e : r.getErrors()) why += std::string("; ") + e.cStr();
  }
  return r.getApplied();
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  auto at = s.find(from);
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

// A raw peer as `uid` that pipelines `calls` calls and never reads; true once the daemon cut it.
bool floodIsCut(const std::string& path, uid_t uid, uint64_t interfaceId, uint16_t methodId,
                const std::function<void(capnp::AnyPointer::Builder)>& fill) {
  int fd = connectUnixAs(uid, path);
  if (fd < 0) return false;
  capnet::testing::RawRpcPeer peer(fd, 1000);
  peer.bootstrap(0);
  // The flood must get past the daemons' open-question limit (256) before it may stop: a send that
  // times out (the socket's buffer holds only a couple of hundred small calls, and a daemon writes
  // its first refusals to the console one by one) is retried until 300 calls are out. Giving up at
  // the first slow second let a slow daemon read every call sent and stay under its limit (seen on
  // a loaded machine). Past 300, a timeout ends the flood: a daemon whose answers go unread stops
  // reading the peer (its flow limit) and cuts it once the peer reads again (below).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (uint32_t q = 1; q <= 20000 && std::chrono::steady_clock::now() < deadline;) {
    if (peer.call(q, 0, interfaceId, methodId, fill)) {
      ++q;
    } else if ((peer.lastError() != EAGAIN && peer.lastError() != EWOULDBLOCK) || q > 300) {
      break;   // the daemon closed the connection, or stopped reading past its limit
    }
  }
  return capnet::testing::waitClosedByPeer(fd, 10000);
}

Report hostileContained(Context& ctx) {
  std::string detail;
  if (!stackUp(ctx, detail)) return Report{Outcome::kPlaceholder, "no-os-stack"};
  const std::string original = readPkgFile(kStateConfig);
  if (original.empty()) return fail("no state config to start from");
  std::vector<std::string> contained;

  // 1. A uid in no policy gets no bootstrap from any daemon: its first call fails.
  {
    Session capd(ctx.io, ctx.paths.capd, kStrangerUid);
    if (capd.ok() && outcome(capd.as<idl::Broker>().statusRequest().send(), ctx.io.waitScope) == "ok") {
      return fail("capd served a uid in no policy");
    }
    Session netd(ctx.io, ctx.paths.netd, kStrangerUid);
    if (netd.ok() && outcome(netd.as<idl::NetConnect>().statusRequest().send(), ctx.io.waitScope) == "ok") {
      return fail("netd served a uid in no policy");
    }
    Session fetchd(ctx.io, ctx.paths.fetchd, kStrangerUid);
    if (fetchd.ok()) {
      auto req = fetchd.as<idl::Fetcher>().fetchRequest();
      req.initRequest().setUrl("gopher://stranger");
      if (outcome(req.send(), ctx.io.waitScope) == "ok") return fail("fetchd served a uid in no policy");
    }
  }
  contained.push_back("no-bootstrap");

  // 2. app holds every connection slot it can get: past the per-uid cap, connections are closed.
  {
    std::vector<kj::Own<Session>> held;
    size_t served = 0;
    for (int i = 0; i < 8; ++i) {
      auto s = kj::heap<Session>(ctx.io, ctx.paths.capd, kAppUid);
      if (s->ok() && outcome(s->as<idl::Broker>().statusRequest().send(), ctx.io.waitScope) == "ok") ++served;
      held.push_back(kj::mv(s));
    }
    if (served != 4) return fail("app was served on " + std::to_string(served) + " capd connections (cap 4)");
    // The selftest principal is still served while app holds its slots.
    Session mine(ctx.io, ctx.paths.capd, kSelftestUid);
    if (!mine.ok() || outcome(mine.as<idl::Broker>().statusRequest().send(), ctx.io.waitScope) != "ok") {
      return fail("selftest was not served while app held its slots");
    }
  }
  contained.push_back("slots");

  // 3. app floods every socket with pipelined calls it never reads, from threads, while the
  //    selftest principal's real fetch runs on this one. First wait until capd has released the
  //    slots of step 2 (it notices the closed sockets asynchronously), so the flood is served —
  //    and then cut — rather than refused at accept.
  for (int i = 0; i < 50; ++i) {
    Session probe(ctx.io, ctx.paths.capd, kAppUid);
    if (probe.ok() && outcome(probe.as<idl::Broker>().statusRequest().send(), ctx.io.waitScope) == "ok") break;
    ::usleep(100000);
  }
  ::usleep(200000);   // the probe's own slot, released the same way.
  std::atomic<int> cut{0};
  std::vector<std::thread> floods;
  floods.emplace_back([&] { cut += floodIsCut(ctx.paths.capd, kAppUid, capnp::typeId<idl::Broker>(), 6, {}); });
  floods.emplace_back([&] { cut += floodIsCut(ctx.paths.netd, kAppUid, capnp::typeId<idl::NetConnect>(), 1, {}); });
  floods.emplace_back([&] {
    cut += floodIsCut(ctx.paths.fetchd, kAppUid, capnp::typeId<idl::Fetcher>(), 0, [](capnp::AnyPointer::Builder p) {
      p.initAs<idl::Fetcher::FetchParams>().initRequest().setUrl("gopher://flood");
    });
  });
  auto legit = fetchAs(ctx, kSelftestUid, "http://devnet.test/");
  for (auto& t : floods) t.join();
  if (cut != 3) return fail("only " + std::to_string(cut.load()) + " of 3 flooding connections were cut");
  if (!legit.error.empty() || legit.refused || legit.body != "capnet devnet fixture\n") {
    return fail("the selftest principal's fetch failed under the flood: " + legit.error + legit.detail);
  }
  contained.push_back("flood");

  // 4. Calls pipelined behind close on a real stream fail with the typed closure.
  {
    auto g = requestGrant(ctx, kAppUid, "tcp", kFixtureHost, kEchoPort);
    if (!g.ok) return fail("app got no tcp grant: " + g.refusal);
    Session netd(ctx.io, ctx.paths.netd, kAppUid);
    auto c = connect(ctx, netd, g.token, kFixtureHost, kEchoPort);
    if (!c.connected) return fail("app's connect refused: " + refusalName(c.reason));
    auto stream = KJ_ASSERT_NONNULL(c.stream);
    auto r1 = stream.readRequest();
    r1.setMaxBytes(10);
    auto read1 = r1.send();
    auto closing = stream.closeRequest().send();
    auto w = stream.writeRequest();
    w.setData(kj::StringPtr("behind close").asBytes());
    auto late = outcome(w.send(), ctx.io.waitScope);
    closing.wait(ctx.io.waitScope);
    outcome(kj::mv(read1), ctx.io.waitScope);
    if (late.find("capnet.stream-closed reason=closed") == std::string::npos) {
      return fail("a write behind close was not refused with the typed closure: " + late);
    }
  }
  contained.push_back("pipelined-close");

  // 5. app hoards grants: refused as tooManyGrants at the cap (4), then gives them back.
  {
    std::vector<kj::Array<kj::byte>> hoard;
    std::string last;
    for (int i = 0; i < 8; ++i) {
      auto g = requestGrant(ctx, kAppUid, "tcp", kFixtureHost, kEchoPort);
      if (!g.ok) {
        last = g.refusal;
        break;
      }
      hoard.push_back(kj::mv(g.token));
    }
    if (last.rfind("too-many-grants", 0) != 0) return fail("grant hoarding was not capped: " + last);
    Session capd(ctx.io, ctx.paths.capd, kAppUid);
    for (auto& t : hoard) {
      auto rv = capd.as<idl::Broker>().revokeRequest();
      rv.setToken(t);
      rv.send().wait(ctx.io.waitScope);
    }
  }
  contained.push_back("grants");

  // 6. app keeps a stream open while admin turns devnet off through capd: the stream is closed
  //    with devnet-off, which app observes on its next call.
  {
    auto g = requestGrant(ctx, kAppUid, "tcp", kFixtureHost, kEchoPort);
    if (!g.ok) return fail("app got no tcp grant: " + g.refusal);
    Session netd(ctx.io, ctx.paths.netd, kAppUid);
    auto c = connect(ctx, netd, g.token, kFixtureHost, kEchoPort);
    if (!c.connected) return fail("app's connect refused: " + refusalName(c.reason));
    auto stream = KJ_ASSERT_NONNULL(c.stream);
    auto w = stream.writeRequest();
    w.setData(kj::StringPtr("tunnel").asBytes());
    w.send().wait(ctx.io.waitScope);
    std::string why;
    if (!writeConfig(replaced(original, "\"enabled\": true", "\"enabled\": false")) || !reloadAsAdmin(ctx, why)) {
      return fail("admin could not turn devnet off: " + why);
    }
    auto r = stream.readRequest();
    r.setMaxBytes(100);
    auto after = outcome(r.send(), ctx.io.waitScope);
    bool back = writeConfig(original) && reloadAsAdmin(ctx, why);
    if (after.find("capnet.stream-closed reason=devnet-off") == std::string::npos) {
      return fail("the stream kept across devnet off was not closed with devnet-off: " + after);
    }
    if (!back) return fail("admin could not turn devnet back on: " + why);
  }
  contained.push_back("devnet-off");

  // 7. app asks for a grant while a reload takes net.tcp.connect away: whatever comes back,
  //    netd refuses to connect with it.
  {
    Session capd(ctx.io, ctx.paths.capd, kAppUid);
    auto req = capd.as<idl::Broker>().requestGrantRequest();
    auto scope = req.initScope();
    scope.setScheme("tcp");
    scope.setHost(kFixtureHost);
    scope.setPort(kEchoPort);
    auto pending = req.send();
    std::string why;
    std::string narrowed = replaced(original, "\"net.http.fetch\", \"net.tcp.connect\", \"net.dns.resolve\"", "\"net.http.fetch\"");
    if (narrowed == original) return fail("the hostile config does not give app net.tcp.connect");
    if (!writeConfig(narrowed) || !reloadAsAdmin(ctx, why)) return fail("reload failed: " + why);
    // Three outcomes are contained: a grant (then netd must refuse it), a refusal, or capd's gate
    // refusing the call itself because the reload reached capd before app's request did (seen on a
    // loaded machine). Any other failure is not.
    kj::Maybe<kj::Array<kj::byte>> granted;
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
      auto resp = pending.wait(ctx.io.waitScope);
      if (resp.getResult().isGranted()) granted = kj::heapArray<kj::byte>(resp.getResult().getGranted().getToken());
    })) {
      std::string what = e->getDescription().cStr();
      if (what.find("permission denied: Broker.requestGrant requires net.tcp.connect") == std::string::npos) {
        return fail("the racing request failed otherwise: " + what);
      }
    }
    KJ_IF_MAYBE(t, granted) {
      Session netd(ctx.io, ctx.paths.netd, kAppUid);
      auto token = kj::mv(*t);
      auto creq = netd.as<idl::NetConnect>().connectRequest();
      creq.setGrant(token);
      creq.setHost(kFixtureHost);
      creq.setPort(kEchoPort);
      auto r = outcome(creq.send(), ctx.io.waitScope);
      if (r == "ok") return fail("a grant minted across the reload still connected");
    }
    if (!writeConfig(original) || !reloadAsAdmin(ctx, why)) return fail("restore failed: " + why);
  }
  contained.push_back("reload-race");

  std::string list;
  for (const auto& c : contained) list += (list.empty() ? "" : ",") + c;
  return Report{Outcome::kOk, "contained=" + list};
}

// ---- The restart profile: a crashed daemon comes back, again and again, and the slice with it. ----


// Kills `name` with SIGKILL; its old pid, or 0 if it was not running.
pid_t killDaemon(const std::string& name) {
  pid_t before = pidOf(name);
  if (before == 0 || ::kill(before, SIGKILL) != 0) return 0;
  return before;
}

// Waits (bounded, 20 s) until a new `name` serves its socket.
bool servedAgain(Context& ctx, const std::string& name, pid_t before, std::string& why) {
  std::string socket = name == "capd" ? ctx.paths.capd : name == "netd" ? ctx.paths.netd : ctx.paths.fetchd;
  for (int i = 0; i < 200; ++i) {
    ::usleep(100000);
    pid_t now = pidOf(name);
    if (now == 0 || now == before) continue;
    Session s(ctx.io, socket, kSelftestUid);
    if (!s.ok()) continue;
    std::string served;
    if (name == "capd") served = outcome(s.as<idl::Broker>().statusRequest().send(), ctx.io.waitScope);
    else if (name == "netd") served = outcome(s.as<idl::NetConnect>().statusRequest().send(), ctx.io.waitScope);
    else served = outcome(s.as<idl::Fetcher>().fetchRequest().send(), ctx.io.waitScope);   // a refusal is an answer
    if (served == "ok") return true;
  }
  why = name + " did not come back within 20 s";
  return false;
}

// Kills `name` and waits (bounded) until a new process of that name serves its socket again.
bool crashAndWait(Context& ctx, const std::string& name, std::string& why) {
  pid_t before = killDaemon(name);
  if (before == 0) {
    why = name + " is not running";
    return false;
  }
  return servedAgain(ctx, name, before, why);
}

// netd's view: capd connected and devnet announced (the policy is back after a restart).
bool policyBack(Context& ctx) {
  for (int i = 0; i < 100; ++i) {
    Session netd(ctx.io, ctx.paths.netd, kSelftestUid);
    if (netd.ok()) {
      auto st = netd.as<idl::NetConnect>().statusRequest().send().wait(ctx.io.waitScope);
      if (st.getCapdConnected() && st.getDevnetEnabled()) return true;
    }
    ::usleep(100000);
  }
  return false;
}

Report daemonRestart(Context& ctx) {
  std::string detail;
  if (!stackUp(ctx, detail)) return Report{Outcome::kPlaceholder, "no-os-stack"};
  auto first = fetchAs(ctx, kSelftestUid, "http://devnet.test/");
  if (first.refused || !first.error.empty()) return fail("no fetch before the crashes: " + first.detail + first.error);
  std::string why;
  // More crashes than the old supervisor's three: it must never give up. (Each one doubles the
  // supervisor's backoff: a fifth would add 1.6 s and prove nothing more.)
  for (int k = 0; k < 4; ++k) {
    if (!crashAndWait(ctx, "capd", why)) return fail(why);
  }
  if (!crashAndWait(ctx, "netd", why)) return fail(why);
  if (!policyBack(ctx)) return fail("netd never heard from capd again");
  auto after = fetchAs(ctx, kSelftestUid, "http://devnet.test/");
  if (after.refused || !after.error.empty() || after.body != "capnet devnet fixture\n") {
    return fail("the fetch after the restarts failed: " + after.detail + after.error);
  }
  return Report{Outcome::kOk, "capd-restarts=4 netd-restarts=1"};
}

// ---- The faults profile: daemons killed while a fetch loop runs ------------------------------------

// One fetch of the loop, bounded: "ok", "refused:<fetch reason>[:<netd reason>]", "unreachable" (a
// daemon's socket was gone or the connection broke because the daemon died), "hang" (no answer in
// 10 s) or "error:<what>" (anything else: never acceptable).
std::string boundedFetch(Context& ctx, const char* url) {
  auto& timer = ctx.io.provider->getTimer();
  std::string out;
  auto attempt = [&]() {
    Session fetchd(ctx.io, ctx.paths.fetchd, kSelftestUid);
    if (!fetchd.ok()) {
      out = "unreachable";
      return;
    }
    kj::Array<kj::byte> ticket;
    {
      Session capd(ctx.io, ctx.paths.capd, kSelftestUid);
      if (capd.ok()) {
        KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                      ticket = fetchTicket(capd.as<idl::Broker>(), url)
                                   .exclusiveJoin(timer.afterDelay(10 * kj::SECONDS).then([]() { return kj::Array<kj::byte>(); }))
                                   .wait(ctx.io.waitScope);
                    })) {
          (void)e;   // capd died under the call: fetchd will refuse without a ticket, typed.
        }
      }
    }
    std::string body;
    uint16_t status = 0;
    bool complete = false;
    auto req = fetchd.as<idl::Fetcher>().fetchRequest();
    req.initRequest().setUrl(url);
    req.getRequest().setTicket(ticket);
    req.setSink(kj::heap<BodyCollector>(BodyCollector::Into{.body = &body, .status = &status, .done = &complete}));
    out = req.send()
              .then([&](capnp::Response<idl::Fetcher::FetchResults>&& resp) -> std::string {
                auto r = resp.getResult();
                if (r.isRefused()) {
                  auto why = r.getRefused();
                  std::string s = "refused:" + std::string(enumName(why.getReason()));
                  if (why.getReason() == idl::FetchRefusal::CONNECT_FAILED || why.getReason() == idl::FetchRefusal::TLS_FAILED) {
                    s += ":" + refusalName(why.getConnectReason());
                  }
                  return s;
                }
                return status == 200 && complete && body == "capnet devnet fixture\n" ? "ok" : "error:unexpected-response";
              })
              .exclusiveJoin(timer.afterDelay(10 * kj::SECONDS).then([]() { return std::string("hang"); }))
              .wait(ctx.io.waitScope);
  };
  KJ_IF_MAYBE(e, kj::runCatchingExceptions(attempt)) {
    out = e->getType() == kj::Exception::Type::DISCONNECTED ? "unreachable" : std::string("error:") + e->getDescription().cStr();
  }
  return out;
}

Report faultsSurvived(Context& ctx) {
  std::string detail;
  if (!stackUp(ctx, detail)) return Report{Outcome::kPlaceholder, "no-os-stack"};
  // The loop: its own thread and event loop, fetching until told to stop.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> outcomes;   // guarded by mu until the loop is joined
  auto count = [&]() {
    std::lock_guard<std::mutex> lock(mu);
    return outcomes.size();
  };
  std::thread loop([&]() {
    auto io = kj::setupAsyncIo();
    Context mine{io, ctx.paths, ctx.profile};
    while (!stop.load()) {
      std::string o = boundedFetch(mine, "http://devnet.test/");
      {
        std::lock_guard<std::mutex> lock(mu);
        outcomes.push_back(std::move(o));
      }
      ::usleep(50000);
    }
  });
  auto finish = [&]() {
    stop = true;
    if (loop.joinable()) loop.join();
  };
  // Whatever ends this function (a return, or an exception from a call into a dying daemon), the
  // loop is stopped and joined before the state it shares goes.
  auto joinLoop = kj::defer([&]() { finish(); });
  std::string why;
  std::vector<std::string> notes;
  int capdKills = 0, netdKills = 0, fetchdKills = 0;
  long worstUnreachableMs = 0;
  for (int round = 0; round < 2; ++round) {
    // capd: a stream open under its grant is closed, and netd refuses everything as
    // capdUnreachable within a second; capd comes back, re-announces, re-registers.
    {
      auto g = requestGrant(ctx, kSelftestUid, "tcp", kFixtureHost, kEchoPort);
      Session netd(ctx.io, ctx.paths.netd, kSelftestUid);
      if (!g.ok || !netd.ok()) return finish(), fail("no stream before killing capd: " + g.refusal);
      auto c = connect(ctx, netd, g.token, kFixtureHost, kEchoPort);
      if (!c.connected) return finish(), fail("no stream before killing capd: " + refusalName(c.reason));
      auto stream = KJ_ASSERT_NONNULL(c.stream);
      auto started = std::chrono::steady_clock::now();
      pid_t old = killDaemon("capd");
      if (old == 0) return finish(), fail("capd is not running");
      ++capdKills;
      bool refused = false;
      while (std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) {
        auto probe = connect(ctx, netd, g.token, kFixtureHost, kEchoPort);
        if (!probe.connected && probe.reason == idl::ConnectRefusal::CAPD_UNREACHABLE) {
          refused = true;
          break;
        }
        ::usleep(20000);
      }
      long ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
      if (!refused) return finish(), fail("netd did not refuse as capd-unreachable within 1 s of capd's death");
      worstUnreachableMs = std::max(worstUnreachableMs, ms);
      auto r = stream.readRequest();
      r.setMaxBytes(16);
      auto closed = outcome(r.send(), ctx.io.waitScope);
      if (closed.find("capnet.stream-closed reason=capd-unreachable") == std::string::npos) {
        return finish(), fail("a stream outlived netd's loss of its grants: " + closed);
      }
      if (!servedAgain(ctx, "capd", old, why) || !policyBack(ctx)) return finish(), fail(why.empty() ? "netd never heard from capd again" : why);
    }
    // netd and fetchd: killed, restarted, and the loop's fetches come back.
    for (const char* name : {"netd", "fetchd"}) {
      pid_t old = killDaemon(name);
      if (old == 0) return finish(), fail(std::string(name) + " is not running");
      (std::string(name) == "netd" ? netdKills : fetchdKills)++;
      if (!servedAgain(ctx, name, old, why)) return finish(), fail(why);
      if (!policyBack(ctx)) return finish(), fail("netd never heard from capd again");
    }
    // One more capd kill without a stream, back to back with the loop.
    pid_t old = killDaemon("capd");
    if (old == 0) return finish(), fail("capd is not running");
    ++capdKills;
    if (!servedAgain(ctx, "capd", old, why) || !policyBack(ctx)) return finish(), fail(why.empty() ? "netd never heard from capd again" : why);
  }
  // After the last restart, the loop's fetches succeed again.
  size_t before = count();
  for (int i = 0; i < 200 && count() < before + 3; ++i) ::usleep(100000);
  finish();
  size_t ok = 0, refused = 0, unreachable = 0, okAtEnd = 0;
  std::string bad;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const auto& o = outcomes[i];
    if (o == "ok") {
      ++ok;
      if (i >= before) ++okAtEnd;
    } else if (o == "refused:capd-unreachable" || o == "refused:netd-unreachable" || o == "refused:no-cap" ||
               o == "refused:devnet-off" || (o.rfind("refused:connect-failed:", 0) == 0 && o != "refused:connect-failed:internal")) {
      // The refusals a daemon's death may cause, each typed (connect-failed carries netd's reason).
      ++refused;
    } else if (o == "unreachable") {
      ++unreachable;
    } else if (bad.empty()) {
      bad = o;
    }
  }
  std::printf("faults: fetches=%zu ok=%zu refused=%zu unreachable=%zu ok-after-last-restart=%zu capd-unreachable-within-ms=%ld\n",
              outcomes.size(), ok, refused, unreachable, okAtEnd, worstUnreachableMs);
  std::fflush(stdout);
  if (!bad.empty()) return fail("the fetch loop saw " + bad);
  if (okAtEnd == 0) return fail("no fetch succeeded after the last restart");
  if (ok == 0 || refused + unreachable == 0) return fail("the loop never crossed a fault");
  return Report{Outcome::kOk, "kills=capd:" + std::to_string(capdKills) + ",netd:" + std::to_string(netdKills) +
                                  ",fetchd:" + std::to_string(fetchdKills) + " fetches=" + std::to_string(outcomes.size())};
}

// ---- The load benchmark (profile `load`, scripts/load-bench.sh) ---------------------------------------


Report loadBench(Context& ctx) {
  std::string detail;
  if (!stackUp(ctx, detail)) return Report{Outcome::kPlaceholder, "no-os-stack"};
  long fetches = 10000;
  if (FILE* f = std::fopen("/state/load/fetches", "r")) {
    if (std::fscanf(f, "%ld", &fetches) != 1) fetches = 10000;
    std::fclose(f);
  }
  const char* kUrl = "http://devnet.test/";
  const char* kDaemons[] = {"capd", "netd", "fetchd"};
  // One round of 256 TLS connections through netd, all open at once, each then exchanging a
  // request and its response.
  constexpr int kConcurrent = 256;
  struct TlsRound {
    long connected = 0, exchanged = 0, errors = 0;
    double seconds = 0;
    long netdOpenRssKb = 0;
    std::string firstError;
  };
  auto tlsRound = [&]() {
    TlsRound out;
    auto t0 = std::chrono::steady_clock::now();
    auto g = requestGrant(ctx, kSelftestUid, "tls", kFixtureHost, 443);
    Session netd(ctx.io, ctx.paths.netd, kSelftestUid);
    if (!g.ok || !netd.ok()) {
      out.errors = kConcurrent;
      out.firstError = "no tls grant: " + g.refusal + netd.error();
      return out;
    }
    std::vector<idl::ByteStream::Client> streams;
    for (int i = 0; i < kConcurrent; ++i) {
      auto req = netd.as<idl::NetConnect>().connectRequest();
      req.setGrant(g.token);
      req.setHost(kFixtureHost);
      req.setPort(443);
      req.setUseTls(true);
      auto resp = req.send().wait(ctx.io.waitScope);
      auto r = resp.getResult();
      if (r.isConnected()) {
        streams.push_back(r.getConnected().getStream());
      } else {
        ++out.errors;
        if (out.firstError.empty()) out.firstError = refusalName(r.getRefused().getReason()) + " " + r.getRefused().getDetail().cStr();
      }
    }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.connected = static_cast<long>(streams.size());
    out.netdOpenRssKb = footprintOf("netd").rssKb;
    kj::Vector<kj::Promise<void>> writes;
    for (auto& st : streams) {
      auto w = st.writeRequest();
      w.setData(kj::StringPtr("GET / HTTP/1.1\r\nHost: devnet.test\r\n\r\n").asBytes());
      writes.add(w.send().ignoreResult());
    }
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { kj::joinPromises(writes.releaseAsArray()).wait(ctx.io.waitScope); })) {
      ++out.errors;
      if (out.firstError.empty()) out.firstError = e->getDescription().cStr();
    }
    for (auto& st : streams) {
      std::string got;
      auto failed = kj::runCatchingExceptions([&]() {
        for (int k = 0; k < 64 && got.find("capnet devnet fixture over TLS") == std::string::npos; ++k) {
          auto rd = st.readRequest();
          rd.setMaxBytes(65536);
          auto resp = rd.send().wait(ctx.io.waitScope);
          got.append(reinterpret_cast<const char*>(resp.getData().begin()), resp.getData().size());
          if (resp.getEof()) break;
        }
      });
      if (failed == nullptr && got.find("capnet devnet fixture over TLS") != std::string::npos) {
        ++out.exchanged;
      } else {
        ++out.errors;
      }
    }
    streams.clear();
    return out;   // the netd session (and with it anything left of the round) ends here

  };
  // Warm-up: one round of the same workload (256 TLS connections, then fetches for at least 200
  // fetches and 70 s), so that allocators, caches and lwIP's pools reach their working size and
  // capd's state bounded by the grant lifetime (60 s: expiry index, tickets) is at its steady
  // level; "flat" compares the end with this.
  Footprint netdIdle = footprintOf("netd");
  TlsRound warmTls = tlsRound();
  long warmErrors = warmTls.errors;
  auto warmStart = std::chrono::steady_clock::now();
  for (int i = 0; i < 200 || std::chrono::steady_clock::now() - warmStart < std::chrono::seconds(70); ++i) {
    warmErrors += boundedFetch(ctx, kUrl) != "ok";
  }
  ::usleep(500000);
  std::map<std::string, Footprint> warm;
  for (const char* d : kDaemons) warm[d] = footprintOf(d);

  // 1. The measured round of TLS connections.
  TlsRound tls = tlsRound();
  long tlsErrors = tls.errors;
  std::string firstTlsError = tls.firstError;
  long connected = tls.connected, exchanged = tls.exchanged;
  double handshakeSeconds = tls.seconds;
  // netd's memory per open TLS connection: its RSS with all of them open, over its RSS before the
  // first round (a lower bound of what one connection holds; allocator slack is not returned).
  long perConnKb = connected > 0 ? (std::max(tls.netdOpenRssKb, warmTls.netdOpenRssKb) - netdIdle.rssKb) / connected : 0;

  // 2. Sequential fetches through fetchd.
  long fetchErrors = 0;
  std::string firstFetchError;
  auto t1 = std::chrono::steady_clock::now();
  for (long i = 0; i < fetches; ++i) {
    std::string o = boundedFetch(ctx, kUrl);
    if (o != "ok") {
      ++fetchErrors;
      if (firstFetchError.empty()) firstFetchError = o;
    }
    if ((i + 1) % 1000 == 0) {
      std::printf("load: progress fetches=%ld errors=%ld rss-kib capd=%ld netd=%ld fetchd=%ld\n", i + 1, fetchErrors,
                  footprintOf("capd").rssKb, footprintOf("netd").rssKb, footprintOf("fetchd").rssKb);
      std::fflush(stdout);
    }
  }
  double fetchSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  // Let the last connections' teardown finish before the final sample.
  ::usleep(500000);

  bool flat = true;
  std::printf("load: tls concurrent=%d connected=%ld exchanged=%ld errors=%ld handshakes=%.1f/s netd-rss-per-open-connection=%ld KiB%s%s\n",
              kConcurrent, connected, exchanged, tlsErrors,
              handshakeSeconds > 0 ? kConcurrent / handshakeSeconds : 0.0, perConnKb, firstTlsError.empty() ? "" : " first-error=",
              firstTlsError.c_str());
  std::printf("load: fetches=%ld errors=%ld seconds=%.1f per-second=%.1f warm-up-errors=%ld%s%s\n", fetches, fetchErrors, fetchSeconds,
              fetchSeconds > 0 ? fetches / fetchSeconds : 0.0, warmErrors, firstFetchError.empty() ? "" : " first-error=",
              firstFetchError.c_str());
  for (const char* d : kDaemons) {
    Footprint end = footprintOf(d);
    const Footprint& w = warm[d];
    double rssPct = w.rssKb > 0 ? 100.0 * static_cast<double>(end.rssKb - w.rssKb) / static_cast<double>(w.rssKb) : 0.0;
    double fdPct = w.fds > 0 ? 100.0 * static_cast<double>(end.fds - w.fds) / static_cast<double>(w.fds) : 0.0;
    bool ok = rssPct <= 5.0 && fdPct <= 5.0;
    flat = flat && ok;
    std::printf("load: %-6s rss-after-warm-up=%ld KiB rss-at-end=%ld KiB (%+.1f%%) fds-after-warm-up=%ld fds-at-end=%ld (%+.1f%%) %s\n", d,
                w.rssKb, end.rssKb, rssPct, w.fds, end.fds, fdPct, ok ? "flat" : "GROWS");
  }
  std::fflush(stdout);
  if (tlsErrors != 0 || fetchErrors != 0) return fail("errors under load: tls=" + std::to_string(tlsErrors) + " fetches=" + std::to_string(fetchErrors));
  if (!flat) return fail("memory or descriptors grew more than 5% under load");
  return Report{Outcome::kOk, "tls=" + std::to_string(kConcurrent) + " fetches=" + std::to_string(fetches)};
}

// ---- tls-interop: OpenSSL's s_server as the peer, curl on the host as the oracle -------------------
// scripts/tls-interop.sh started one s_server per case, asked curl (same roots, name, TLS floor,
// pins and date) for its verdict, and wrote the cases onto the state disk: "case NAME URL EXPECTED
// CURL", EXPECTED being `accept` or the refusal reason capnet must give, CURL curl's verdict in the
// same words (they differ only where the host script lists capnet as deliberately stricter). Every
// case is fetched through fetchd as the selftest principal; ok only when every verdict is EXPECTED.
Report tlsInterop(Context& ctx) {
  const char* kCases = "/state/interop/cases";
  FILE* f = std::fopen(kCases, "r");
  if (f == nullptr) return Report{Outcome::kPlaceholder, "no-case-list (the host did not prepare the tls-interop cases)"};
  std::string nonce;
  struct Case {
    std::string name, url, expected, curl;
  };
  std::vector<Case> cases;
  char line[1024];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    char a[64] = {}, b[64] = {}, c[512] = {}, d[64] = {}, e[64] = {};
    int n = std::sscanf(line, "%63s %63s %511s %63s %63s", a, b, c, d, e);
    if (n >= 2 && std::string(a) == "nonce") nonce = b;
    if (n == 5 && std::string(a) == "case") cases.push_back({b, c, d, e});
  }
  std::fclose(f);
  if (cases.empty() || nonce.empty()) return fail(std::string(kCases) + " holds no cases");
  int matched = 0;
  std::string mismatches;
  for (const auto& c : cases) {
    auto got = fetchAs(ctx, kSelftestUid, c.url.c_str());
    std::string verdict;
    if (!got.error.empty()) {
      verdict = "fetchd-unreachable";
    } else if (!got.refused) {
      std::string want = "capnet interop case=" + c.name + " nonce=" + nonce + "\n";
      verdict = got.status == 200 && got.complete && got.body == want ? "accept" : "accept-but-wrong-body";
    } else if (got.reason == idl::FetchRefusal::TLS_FAILED) {
      verdict = refusalName(got.netReason);
    } else {
      verdict = "fetch-" + std::string(enumName(got.reason));
    }
    bool ok = verdict == c.expected;
    std::printf("tls-interop: case=%s capnet=%s curl=%s expected=%s %s%s\n", c.name.c_str(), verdict.c_str(), c.curl.c_str(),
                c.expected.c_str(), ok ? "match" : "MISMATCH", got.refused && !ok ? (" detail=\"" + got.detail + "\"").c_str() : "");
    std::fflush(stdout);
    if (ok) {
      ++matched;
    } else {
      mismatches += (mismatches.empty() ? "" : ",") + c.name;
    }
  }
  if (matched != static_cast<int>(cases.size())) return fail("differs from curl: " + mismatches);
  return Report{Outcome::kOk, "cases=" + std::to_string(matched)};
}

}  // namespace

std::vector<Scenario> netScenarios(const std::string& profile) {
  if (profile == "devnet-off") return {{"web fetch", webFetch}, {"net dev off deny", devnetOffDeny}};
  if (profile == "no-stack") {
    return {{"net tcp", noStackPlaceholder}, {"net https", noStackPlaceholder}};
  }
  if (profile == "tcp") return {{"net tcp", tcpExchange}, {"net nocap deny", noCapDeny}};
  if (profile == "hostile") return {{"net hostile contained", hostileContained}};
  if (profile == "restart") return {{"daemon restart", daemonRestart}};
  if (profile == "faults") return {{"net faults survived", faultsSurvived}};
  if (profile == "load") return {{"net load", loadBench}};
  if (profile == "https") {
    return {{"net https", httpsFetch},     {"net tls deny", tlsDeny},   {"web redirect", httpsRedirects},
            {"web body cap", httpsBodyCap}, {"web devnet nocap deny", httpsNoCap}, {"web url deny", urlDeny}};
  }
  if (profile == "tls-interop") return {{"tls interop", tlsInterop}};
  if (profile == "trust-persist") return {{"trust nocap deny", trustNoCap}, {"trust install", trustInstall}};
  if (profile == "trust-persist-2") return {{"trust installed persist", trustPersisted}};
  if (profile == "http") {
    return {{"net http", httpFetch}, {"web redirect", httpRedirects}, {"web devnet nocap deny", httpNoCap}};
  }
  return {};
}

// The pid of the running process named `name` (from /proc/*/comm), or 0.
pid_t pidOf(const std::string& name) {
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return 0;
  pid_t found = 0;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    std::string comm;
    if (FILE* f = std::fopen(("/proc/" + std::string(e->d_name) + "/comm").c_str(), "r")) {
      char buf[64] = {};
      if (std::fgets(buf, sizeof(buf), f) != nullptr) comm = buf;
      std::fclose(f);
    }
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    if (comm == name) found = static_cast<pid_t>(pid);
  }
  ::closedir(d);
  return found;
}

Footprint footprintOf(const std::string& name) {
  Footprint f;
  pid_t pid = pidOf(name);
  if (pid == 0) return f;
  if (FILE* st = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r")) {
    char line[256];
    while (std::fgets(line, sizeof(line), st) != nullptr) {
      if (std::strncmp(line, "VmRSS:", 6) == 0) f.rssKb = std::strtol(line + 6, nullptr, 10);
    }
    std::fclose(st);
  }
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    while (dirent* e = ::readdir(d)) f.fds += e->d_name[0] != '.';
    ::closedir(d);
  }
  return f;
}

Grant requestGrant(Context& ctx, uid_t as, const char* scheme, const char* host, uint16_t port) {
  Grant g;
  Session capd(ctx.io, ctx.paths.capd, as);
  if (!capd.ok()) {
    g.refusal = capd.error();
    return g;
  }
  auto req = capd.as<idl::Broker>().requestGrantRequest();
  auto scope = req.initScope();
  scope.setScheme(scheme);
  scope.setHost(host);
  scope.setPort(port);
  auto resp = req.send().wait(ctx.io.waitScope);
  auto r = resp.getResult();
  if (r.isGranted()) {
    g.ok = true;
    g.token = kj::heapArray<kj::byte>(r.getGranted().getToken());
  } else {
    g.refusal = std::string(enumName(r.getRefused().getReason())) + " (" + r.getRefused().getDetail().cStr() + ")";
  }
  return g;
}

}  // namespace capnet::selftest

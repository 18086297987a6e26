// Writes the RPC targets' seed corpora: well-formed conversations a client could send (bootstrap,
// then pipelined calls on every method), so the fuzzer starts from messages that reach the methods
// instead of the framing alone.
//   make-seeds OUTDIR                        the broker target (capd's Broker and TrustManager)
//   make-seeds trust-manager OUTDIR PKIDIR   capd's TrustManager, with the test PKI's certificates
//   make-seeds netd-rpc OUTDIR               netd's NetConnect and the ByteStream it hands out
//   make-seeds fetchd-rpc OUTDIR             fetchd's Fetcher (with a BodySink capability)
#include <capnp/message.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

#include <capnp/capability.h>
#include <kj/encoding.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include <sstream>
#include <vector>

#include "idl/cap.capnp.h"
#include "idl/fetch.capnp.h"
#include "idl/net.capnp.h"
#include "idl/trust.capnp.h"
#include "tests/support/hostile-client.h"

namespace {

std::string message(capnp::MessageBuilder& m) {
  auto words = capnp::messageToFlatArray(m);
  return std::string(reinterpret_cast<const char*>(words.asBytes().begin()), words.asBytes().size());
}

std::string bootstrap() {
  capnp::MallocMessageBuilder m;
  m.initRoot<capnp::rpc::Message>().initBootstrap().setQuestionId(0);
  return message(m);
}

std::string call(uint32_t q, uint64_t iface, uint16_t method, const std::function<void(capnp::AnyPointer::Builder)>& fill) {
  capnp::MallocMessageBuilder m;
  capnet::testing::buildCall(m, q, 0, -1, iface, method, fill);
  return message(m);
}

std::string finish(uint32_t q) {
  capnp::MallocMessageBuilder m;
  m.initRoot<capnp::rpc::Message>().initFinish().setQuestionId(q);
  return message(m);
}

// A call on a capability inside an earlier answer (`target` question, `path` of pointer fields),
// carrying `caps` capabilities the caller hosts (export ids 0..caps-1): the params may refer to
// them (a BuilderCapabilityTable gives the fill function indexes to write).
std::string callOn(uint32_t q, uint32_t target, std::vector<uint16_t> path, uint64_t iface, uint16_t method,
                   const std::function<void(capnp::AnyPointer::Builder)>& fill, unsigned caps = 0) {
  capnp::MallocMessageBuilder m;
  auto c = m.initRoot<capnp::rpc::Message>().initCall();
  c.setQuestionId(q);
  auto pa = c.initTarget().initPromisedAnswer();
  pa.setQuestionId(target);
  auto ops = pa.initTransform(static_cast<unsigned>(path.size()));
  for (unsigned i = 0; i < ops.size(); ++i) ops[i].setGetPointerField(path[i]);
  c.setInterfaceId(iface);
  c.setMethodId(method);
  auto p = c.initParams();
  capnp::BuilderCapabilityTable table;
  if (fill) fill(table.imbue(p.getContent()));
  auto ct = p.initCapTable(caps);
  for (unsigned i = 0; i < caps; ++i) ct[i].setSenderHosted(i);
  return message(m);
}

std::string fileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// SHA-256 of the first certificate's DER in a PEM file (the TrustManager's fingerprint).
std::string derSha256(const std::string& pem) {
  auto b = pem.find("-----BEGIN CERTIFICATE-----"), e = pem.find("-----END CERTIFICATE-----");
  if (b == std::string::npos || e == std::string::npos) return std::string(32, '\0');
  std::string body;
  for (char c : pem.substr(b + 27, e - b - 27)) {
    if (c != '\n' && c != '\r') body += c;
  }
  auto der = kj::decodeBase64(kj::arrayPtr(body.data(), body.size()));
  unsigned char out[32] = {};
  wc_Sha256Hash(der.begin(), static_cast<word32>(der.size()), out);
  return std::string(reinterpret_cast<char*>(out), 32);
}

class NoSink final : public capnet::idl::BodySink::Server {};

struct Seed {
  std::string name;
  std::string bytes;
};

void writeSeeds(const std::string& dir, const std::vector<Seed>& seeds) {
  for (const auto& s : seeds) std::ofstream(dir + "/" + s.name, std::ios::binary) << s.bytes;
}

std::vector<Seed> trustSeeds(const std::string& pki) {
  using namespace capnet::idl;
  const uint64_t trust = capnp::typeId<TrustManager>();
  auto add = [&](uint32_t q, const std::string& pem) {
    return call(q, trust, 1, [&](auto p) {
      p.template initAs<TrustManager::AddParams>().setPem(kj::arrayPtr(reinterpret_cast<const kj::byte*>(pem.data()), pem.size()));
    });
  };
  auto remove = [&](uint32_t q, const std::string& sha) {
    return call(q, trust, 2, [&](auto p) {
      p.template initAs<TrustManager::RemoveParams>().setSha256(kj::arrayPtr(reinterpret_cast<const kj::byte*>(sha.data()), sha.size()));
    });
  };
  std::string inter = fileText(pki + "/ca-intermediate.pem"), ca = fileText(pki + "/ca.pem");
  std::string expired = fileText(pki + "/ca-expired.pem"), leaf = fileText(pki + "/ecdsa256.pem");
  std::string weak = fileText(pki + "/ca-rsa1024.pem"), root2 = fileText(pki + "/persist-root.pem");
  return {
      {"list", bootstrap() + call(1, trust, 0, {}) + finish(1)},
      {"add-root", bootstrap() + add(1, root2) + call(2, trust, 0, {})},
      {"add-intermediate", bootstrap() + add(1, inter)},
      {"add-expired", bootstrap() + add(1, expired)},
      {"add-leaf", bootstrap() + add(1, leaf)},
      {"add-rsa1024", bootstrap() + add(1, weak)},
      {"add-shipped-again", bootstrap() + add(1, ca)},
      {"add-remove", bootstrap() + add(1, root2) + remove(2, derSha256(root2)) + call(3, trust, 0, {})},
      {"remove-shipped", bootstrap() + remove(1, derSha256(ca))},
      {"remove-short", bootstrap() + remove(1, "abc")},
      {"add-truncated", bootstrap() + add(1, root2.substr(0, root2.size() / 2))},
      {"add-ed25519-root", bootstrap() + add(1, fileText(pki + "/ca-ed25519.pem"))},
      {"add-chain", bootstrap() + add(1, fileText(pki + "/chain-root.pem"))},
  };
}

std::vector<Seed> netdSeeds() {
  using namespace capnet::idl;
  const uint64_t net = capnp::typeId<NetConnect>(), bs = capnp::typeId<ByteStream>();
  auto connect = [&](uint32_t q, uint8_t tokenByte, const char* host, uint16_t port, bool tls) {
    return call(q, net, 0, [=](auto p) {
      auto c = p.template initAs<NetConnect::ConnectParams>();
      auto t = c.initGrant(16);
      std::fill(t.begin(), t.end(), tokenByte);
      c.setHost(host);
      c.setPort(port);
      c.setUseTls(tls);
    });
  };
  // ConnectResults.result (pointer 0) -> connected.stream (pointer 0).
  auto onStream = [&](uint32_t q, uint16_t method, const std::function<void(capnp::AnyPointer::Builder)>& fill) {
    return callOn(q, 1, {0, 0}, bs, method, fill);
  };
  auto write = [&](uint32_t q, const std::string& d) {
    return onStream(q, 1, [d](auto p) {
      p.template initAs<ByteStream::WriteParams>().setData(kj::arrayPtr(reinterpret_cast<const kj::byte*>(d.data()), d.size()));
    });
  };
  auto read = [&](uint32_t q, uint32_t n) {
    return onStream(q, 0, [n](auto p) { p.template initAs<ByteStream::ReadParams>().setMaxBytes(n); });
  };
  return {
      {"status", bootstrap() + call(1, net, 1, {}) + finish(1)},
      {"connect", bootstrap() + connect(1, 0x42, "devnet.test", 7, false)},
      {"connect-bad-token", bootstrap() + connect(1, 0x41, "devnet.test", 7, false)},
      {"connect-other-host", bootstrap() + connect(1, 0x42, "other.test", 7, false)},
      {"connect-other-port", bootstrap() + connect(1, 0x42, "devnet.test", 8, false)},
      {"connect-tls", bootstrap() + connect(1, 0x42, "devnet.test", 7, true)},
      {"echo", bootstrap() + connect(1, 0x42, "devnet.test", 7, false) + write(2, "hello") + read(3, 5) +
                   onStream(4, 2, {}) + read(5, 100) + onStream(6, 3, {}) + finish(2) + finish(3)},
      {"read-first", bootstrap() + connect(1, 0x42, "devnet.test", 7, false) + write(2, std::string(3000, 'x')) +
                         read(3, 70000) + finish(1)},
      {"close-twice", bootstrap() + connect(1, 0x42, "devnet.test", 7, false) + onStream(2, 3, {}) + onStream(3, 3, {}) +
                          write(4, "late")},
      // A read cancelled (Finish) while it waits, then bytes arrive (the echo of a write): the
      // read must not answer into its freed call context (a use-after-free found by netd-test).
      {"read-cancelled", bootstrap() + connect(1, 0x42, "devnet.test", 7, false) + read(2, 100) + read(3, 100) + finish(2) +
                             finish(3) + write(4, "late bytes") + read(5, 4) + read(6, 100)},
  };
}

std::vector<Seed> fetchdSeeds() {
  using namespace capnet::idl;
  const uint64_t fetcher = capnp::typeId<Fetcher>();
  auto fetch = [&](uint32_t q, const std::string& url, bool head, bool ticket, uint64_t maxBody) {
    return callOn(q, 0, {}, fetcher, 0, [=](auto p) {
      auto f = p.template initAs<Fetcher::FetchParams>();
      auto r = f.initRequest();
      r.setUrl(url);
      r.setMethod(head ? Method::HEAD : Method::GET);
      r.setMaxBodyBytes(maxBody);
      if (ticket) {
        auto t = r.initTicket(16);
        std::fill(t.begin(), t.end(), 0x77);
      }
      f.setSink(kj::heap<NoSink>());
    }, 1);
  };
  return {
      {"fetch-devnet", bootstrap() + fetch(1, "http://devnet.test/", false, true, 0)},
      {"fetch-head", bootstrap() + fetch(1, "http://devnet.test/a?b#c", true, true, 0)},
      {"fetch-no-ticket", bootstrap() + fetch(1, "http://devnet.test/", false, false, 0)},
      {"fetch-fixture", bootstrap() + fetch(1, "http://fixture.local/index.html", false, false, 0)},
      {"fetch-small-cap", bootstrap() + fetch(1, "http://devnet.test/", false, true, 3)},
      {"fetch-scheme", bootstrap() + fetch(1, "ftp://devnet.test/", false, true, 0)},
      {"fetch-bad-url", bootstrap() + fetch(1, "http://[::1/", false, true, 0)},
      {"fetch-https", bootstrap() + fetch(1, "https://devnet.test:8443/x", false, true, 0)},
      {"fetch-two", bootstrap() + fetch(1, "http://devnet.test/", false, true, 0) +
                        fetch(2, "http://fixture.local/", false, false, 0) + finish(1)},
  };
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "trust-manager") {
    writeSeeds(argv[2], trustSeeds(argv[3]));
    return 0;
  }
  if (argc == 3 && std::string(argv[1]) == "netd-rpc") {
    writeSeeds(argv[2], netdSeeds());
    return 0;
  }
  if (argc == 3 && std::string(argv[1]) == "fetchd-rpc") {
    writeSeeds(argv[2], fetchdSeeds());
    return 0;
  }
  if (argc != 2) return 2;
  std::string dir = argv[1];
  using namespace capnet::idl;
  const uint64_t broker = capnp::typeId<Broker>(), trust = capnp::typeId<TrustManager>();
  auto scope = [](Scope::Builder s, const char* scheme, const char* host, uint16_t port) {
    s.setScheme(scheme);
    s.setHost(host);
    s.setPort(port);
  };
  const Seed seeds[] = {
      {"status", bootstrap() + call(1, broker, 6, {}) + finish(1)},
      {"request-grant", bootstrap() + call(1, broker, 0, [&](auto p) {
         scope(p.template initAs<Broker::RequestGrantParams>().initScope(), "tcp", "devnet.test", 7);
       })},
      {"request-ticket", bootstrap() + call(1, broker, 7, [&](auto p) {
         auto t = p.template initAs<Broker::RequestTicketParams>();
         scope(t.initScope(), "https", "devnet.test", 443);
         t.setDelegate("fetchd");
       })},
      {"grant-for", bootstrap() + call(1, broker, 1, [&](auto p) {
         auto g = p.template initAs<Broker::RequestGrantForParams>();
         g.initTicket(16);
         scope(g.initScope(), "https", "devnet.test", 443);
       })},
      {"explain", bootstrap() + call(1, broker, 4, [&](auto p) {
         auto e = p.template initAs<Broker::ExplainParams>();
         e.setPrincipal("fuzz");
         e.setUrl("https://devnet.test/");
       })},
      {"revoke", bootstrap() + call(1, broker, 2, [&](auto p) { p.template initAs<Broker::RevokeParams>().initToken(16); })},
      {"check", bootstrap() + call(1, broker, 3, [&](auto p) {
         auto c = p.template initAs<Broker::CheckParams>();
         c.setSubjectUid(2000);
         c.setCapability("net.http.fetch");
       })},
      {"describe", bootstrap() + call(1, broker, 8, [&](auto p) { p.template initAs<Broker::DescribeParams>().setUid(2000); })},
      {"reload", bootstrap() + call(1, broker, 5, {})},
      {"trust-list", bootstrap() + call(1, trust, 0, {})},
      {"trust-add", bootstrap() + call(1, trust, 1, [&](auto p) {
         p.template initAs<TrustManager::AddParams>().setPem(kj::StringPtr("-----BEGIN CERTIFICATE-----\n").asBytes());
       })},
      {"pipelined", bootstrap() + call(1, broker, 6, {}) + call(2, broker, 0, [&](auto p) {
         scope(p.template initAs<Broker::RequestGrantParams>().initScope(), "tls", "10.0.2.100", 443);
       }) + finish(1) + finish(2)},
  };
  for (const auto& s : seeds) {
    std::ofstream(dir + "/" + s.name, std::ios::binary) << s.bytes;
  }
  return 0;
}

// Writes the broker target's seed corpus: well-formed RPC conversations a client could send to
// capd (bootstrap, then pipelined calls on every Broker and TrustManager method), so the fuzzer
// starts from messages that reach the methods instead of the framing alone.
//   make-seeds OUTDIR
#include <capnp/message.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

#include "idl/cap.capnp.h"
#include "idl/trust.capnp.h"

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
  auto c = m.initRoot<capnp::rpc::Message>().initCall();
  c.setQuestionId(q);
  c.initTarget().initPromisedAnswer().setQuestionId(0);
  c.setInterfaceId(iface);
  c.setMethodId(method);
  auto p = c.initParams();
  if (fill) fill(p.getContent());
  p.initCapTable(0);
  return message(m);
}

std::string finish(uint32_t q) {
  capnp::MallocMessageBuilder m;
  m.initRoot<capnp::rpc::Message>().initFinish().setQuestionId(q);
  return message(m);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  std::string dir = argv[1];
  using namespace capnet::idl;
  const uint64_t broker = capnp::typeId<Broker>(), trust = capnp::typeId<TrustManager>();
  auto scope = [](Scope::Builder s, const char* scheme, const char* host, uint16_t port) {
    s.setScheme(scheme);
    s.setHost(host);
    s.setPort(port);
  };
  struct Seed {
    const char* name;
    std::string bytes;
  } seeds[] = {
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

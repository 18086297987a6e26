// For apps that fetch through fetchd: the delegation ticket a real fetch needs. fetchd can obtain
// a grant only with a ticket that capd minted for the app that asked, naming fetchd and the URL's
// scheme, host and port (idl/cap.capnp Broker.requestTicket), so the app asks capd first and puts
// the ticket into FetchRequest.ticket.
#pragma once

#include <kj/async.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "idl/cap.capnp.h"
#include "idl/fetch.capnp.h"

namespace capnet {

// Resolves with the ticket, or an empty array when the URL needs none (the fixture path), does not
// parse (fetchd refuses it with the reason), or capd refused or failed (fetchd then refuses the
// fetch with the grant's reason: it cannot act without a ticket). Never rejects.
kj::Promise<kj::Array<kj::byte>> fetchTicket(idl::Broker::Client capd, std::string_view url);

// The BodySink an app hands fetchd when it wants the response in memory (selftest, the tests, the
// benchmarks, the fuzz targets): each field it is given is filled in, the others are not kept.
class BodyCollector final : public idl::BodySink::Server {
 public:
  struct Into {
    std::string* body = nullptr;   // the body's bytes
    uint16_t* status = nullptr;    // begin()'s status
    bool* done = nullptr;          // set when done() arrives (the body is whole)
    uint64_t* bytes = nullptr;     // how many body bytes arrived
  };
  BodyCollector() {}   // keeps nothing
  explicit BodyCollector(Into into) : into_(into) {}
  kj::Promise<void> begin(BeginContext c) override;
  kj::Promise<void> write(WriteContext c) override;
  kj::Promise<void> done(DoneContext c) override;

 private:
  Into into_;
};

}  // namespace capnet

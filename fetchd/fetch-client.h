// For apps that fetch through fetchd: the delegation ticket a real fetch needs. fetchd can obtain
// a grant only with a ticket that capd minted for the app that asked, naming fetchd and the URL's
// scheme, host and port (idl/cap.capnp Broker.requestTicket), so the app asks capd first and puts
// the ticket into FetchRequest.ticket.
#pragma once

#include <kj/async.h>

#include <string_view>

#include "idl/cap.capnp.h"

namespace capnet {

// Resolves with the ticket, or an empty array when the URL needs none (the fixture path), does not
// parse (fetchd refuses it with the reason), or capd refused or failed (fetchd then refuses the
// fetch with the grant's reason: it cannot act without a ticket). Never rejects.
kj::Promise<kj::Array<kj::byte>> fetchTicket(idl::Broker::Client capd, std::string_view url);

}  // namespace capnet

// Cap'n Proto messages from a hostile app into fetchd's Fetcher bootstrap (fetchd/fetchd.cpp:
// Fetchd::connectionFor, the gated FetcherImpl::fetch) over an in-process connection with the
// reader limits fetchd's socket uses. Behind fetchd the world is in process (rig:
// fuzz/fuzz-fetchd-rig.h): a fake capd that allows and mints, the real Netd, and an origin that
// answers every request with a small valid response, so a well-formed fetch runs to the sink
// (the peer's own capability, which it never answers: calls back to it wait on the peer).
// The input is the raw byte stream the app sends (seeds: fuzz/make-seeds.cpp). The harness runs
// everything the input set off (all of it is in-memory events) before ending the peer's side.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz/fuzz-fetchd-rig.h"
#include "fuzz/fuzz-world.h"
#include "fuzz/rpc-feed.h"

using namespace capnet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& io = capnet::fuzz::world<fuzzrig::EventLoop>().io;
  FetchLimits limits;
  limits.totalTimeoutMs = 2000;
  {
    fuzzrig::FetchdWorld world(*io.provider, limits);
    world.origin.responder = [](size_t) {
      return std::string("HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\r\nhello\n");
    };
    // The socket's factory, as fetchd's main runs it: capd describes the caller first.
    auto bootstrap = world.fetchd->connectionFor(fuzzrig::kAppUid).wait(io.waitScope);
    KJ_IF_MAYBE(cap, bootstrap) {
      capnet::fuzz::feedRpc(io, kj::mv(*cap), data, size, capnet::fuzz::PeerEnd::kAfterSettle);
    }
    io.waitScope.poll();
  }
  io.waitScope.poll();
  return 0;
}

// An origin server's bytes into fetchd's real HTTP response handling (fetchd/fetchd.cpp:
// FetcherImpl::fetch -> realFetch -> http(): KJ's HttpClient over netd's ByteStream, the status
// line, headers, the header cap, same-origin redirects and their limit, Content-Length and chunked
// bodies and the body cap, copyBody into the sink). The fetch is a well-formed one the harness
// makes (GET http://devnet.test/start with a valid ticket); the real Netd carries it to an
// in-memory origin whose answer is the input (rig: fuzz/fuzz-fetchd-rig.h).
//
// Input: byte 0 = options (bit 0 HEAD; bits 1-2 maxBodyBytes 8 MiB/64/4096/0x10000; bit 3
// maxHeaderBytes 256; bits 4-5 maxRedirects 5/0/1/2); the rest is the origin's answer, split at
// each "#HOP#" into the answers of successive connections (redirect hops; the last part answers
// every later hop).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz-fetchd-rig.h"
#include "fuzz/fuzz-world.h"

using namespace capnet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t opts = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string> hops;
  for (;;) {
    size_t at = rest.find("#HOP#");
    hops.emplace_back(rest.substr(0, at));
    if (at == std::string_view::npos) break;
    rest.remove_prefix(at + 5);
  }

  FetchLimits limits;
  limits.totalTimeoutMs = 2000;
  static constexpr uint64_t kBody[] = {8u << 20, 64, 4096, 0x10000};
  limits.maxBodyBytes = kBody[(opts >> 1) & 3];
  if (opts & 8) limits.maxHeaderBytes = 256;
  static constexpr uint32_t kRedirects[] = {5, 0, 1, 2};

  auto& io = capnet::fuzz::world<fuzzrig::EventLoop>().io;
  {
    fuzzrig::FetchdWorld world(*io.provider, limits);
    world.minting.maxRedirects = kRedirects[(opts >> 4) & 3];
    world.origin.responder = [&hops](size_t n) { return hops[std::min(n, hops.size() - 1)]; };
    auto req = world.fetchd->fetcherFor(fuzzrig::kAppUid).fetchRequest();
    auto r = req.initRequest();
    r.setUrl("http://devnet.test/start");
    r.setMethod((opts & 1) ? idl::Method::HEAD : idl::Method::GET);
    auto ticket = r.initTicket(16);
    std::fill(ticket.begin(), ticket.end(), fuzzrig::kTicketByte);
    req.setSink(kj::heap<BodyCollector>());
    req.send().then([](auto&&) {}, [](kj::Exception&&) {}).wait(io.waitScope);
    io.waitScope.poll();   // let closes and released streams settle before the world goes.
  }
  io.waitScope.poll();
  return 0;
}

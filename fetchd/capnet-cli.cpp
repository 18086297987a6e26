// capnet: the command-line client for users inside the guest.
//
//   capnet fetch URL [-o FILE] [-I] [--socket PATH]
//
// The body goes to stdout, or to FILE through a temporary file renamed only when the body arrived
// whole. -I sends HEAD and prints the status line and headers. A progress bar appears on stderr for
// bodies of known length when stderr is a terminal. Exit: 0 fetched, 1 refused or failed, 2 usage.
#include <capnp/rpc-twoparty.h>
#include <capnp/schema.h>
#include <kj/async-io.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/cli.h"
#include "fetchd/fetch-client.h"
#include "idl/names.h"
#include "idl/fetch.capnp.h"

namespace {

constexpr const char* kUsage = "usage: capnet fetch [-I] [-o FILE] [--socket PATH] [--capd PATH] URL  (options in any order)\n";

std::string reasonName(capnet::idl::FetchRefusal r) { return std::string(capnet::enumName(r)); }

class FileSink final : public capnet::idl::BodySink::Server {
 public:
  FileSink(FILE* out, bool progress) : out_(out), progress_(progress) {}
  kj::Promise<void> begin(BeginContext c) override {
    total_ = c.getParams().getContentLength();
    return kj::READY_NOW;
  }
  kj::Promise<void> write(WriteContext c) override {
    auto chunk = c.getParams().getChunk();
    if (std::fwrite(chunk.begin(), 1, chunk.size(), out_) != chunk.size()) {
      return KJ_EXCEPTION(FAILED, "cannot write the output");
    }
    got_ += chunk.size();
    if (progress_ && total_ > 0) {
      int pct = static_cast<int>(100.0 * static_cast<double>(got_) / static_cast<double>(total_));
      int bars = pct / 4;
      std::fprintf(stderr, "\r[%-25s] %3d%% %llu/%lld bytes", std::string(static_cast<size_t>(bars), '#').c_str(), pct,
                   static_cast<unsigned long long>(got_), static_cast<long long>(total_));
    }
    return kj::READY_NOW;
  }
  kj::Promise<void> done(DoneContext) override {
    if (progress_ && total_ > 0) std::fprintf(stderr, "\n");
    return kj::READY_NOW;
  }

 private:
  FILE* out_;
  bool progress_;
  int64_t total_ = -1;
  uint64_t got_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (int rc = capnet::cli::standardFlags(argc, argv, "capnet", kUsage); rc >= 0) return rc;
  if (argc < 3 || std::string(argv[1]) != "fetch") {
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  }
  std::string url, output, socketPath = "/run/capnet/fetchd.sock", capdPath = "/run/capnet/capd.sock";
  bool head = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-I") head = true;
    else if (a == "-o" && i + 1 < argc) output = argv[++i];
    else if (a == "--socket" && i + 1 < argc) socketPath = argv[++i];
    else if (a == "--capd" && i + 1 < argc) capdPath = argv[++i];
    else if (!a.empty() && a[0] != '-' && url.empty()) url = a;
    else {
      std::fprintf(stderr, "capnet: unexpected argument \"%s\"\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (url.empty()) {
    std::fprintf(stderr, "capnet: a URL is required\n%s", kUsage);
    return 2;
  }
  std::string tmp = output.empty() ? "" : output + ".part";
  FILE* out = stdout;
  if (!head && !output.empty()) {
    out = std::fopen(tmp.c_str(), "wb");
    if (out == nullptr) {
      std::perror(("capnet: " + tmp).c_str());
      return 1;
    }
  }
  auto io = kj::setupAsyncIo();
  int rc = 1;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
    // A real host needs a delegation ticket from capd naming fetchd: fetchd never acts in our
    // name unasked. Without one (fixture path, capd refused) fetchd says why it refuses.
    kj::Array<kj::byte> ticket;
    KJ_IF_MAYBE(capdFailed, kj::runCatchingExceptions([&]() {
      auto capdAddr = io.provider->getNetwork().parseAddress(kj::str("unix:", capdPath.c_str())).wait(io.waitScope);
      auto capdStream = capdAddr->connect().wait(io.waitScope);
      capnp::TwoPartyClient capd(*capdStream);
      ticket = capnet::fetchTicket(capd.bootstrap().castAs<capnet::idl::Broker>(), url).wait(io.waitScope);
    })) {
      (void)capdFailed;   // fetchd reports the refusal.
    }
    auto addr = io.provider->getNetwork().parseAddress(kj::str("unix:", socketPath.c_str())).wait(io.waitScope);
    auto stream = addr->connect().wait(io.waitScope);
    capnp::TwoPartyClient client(*stream);
    auto req = client.bootstrap().castAs<capnet::idl::Fetcher>().fetchRequest();
    auto r = req.initRequest();
    r.setUrl(url);
    r.setMethod(head ? capnet::idl::Method::HEAD : capnet::idl::Method::GET);
    r.setTicket(ticket);
    req.setSink(kj::heap<FileSink>(out, !head && isatty(STDERR_FILENO)));
    auto resp = req.send().wait(io.waitScope);
    auto result = resp.getResult();
    if (result.isRefused()) {
      std::fprintf(stderr, "capnet: refused reason=%s detail=\"%s\"\n", reasonName(result.getRefused().getReason()).c_str(),
                   result.getRefused().getDetail().cStr());
      return;
    }
    auto ok = result.getResponse();
    if (head) {
      std::printf("HTTP %u (%s via %s)\n", ok.getStatus(), ok.getFinalUrl().cStr(), ok.getBackend().cStr());
      for (auto h : ok.getHeaders()) std::printf("%s: %s\n", h.getName().cStr(), h.getValue().cStr());
    }
    rc = ok.getStatus() >= 200 && ok.getStatus() < 400 ? 0 : 1;
  })) {
    std::fprintf(stderr, "capnet: %s\n", e->getDescription().cStr());
    rc = 1;
  }
  if (out != stdout) {
    std::fclose(out);
    if (rc == 0) {
      if (std::rename(tmp.c_str(), output.c_str()) != 0) {
        std::perror("capnet: rename");
        rc = 1;
      }
    } else {
      std::remove(tmp.c_str());
    }
  }
  return rc;
}

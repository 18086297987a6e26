#include "fetchd/fetchd.h"

#include <capnp/rpc-twoparty.h>
#include <kj/compat/http.h>
#include <kj/debug.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <set>

#include "common/audit.h"
#include "common/url.h"
#include "idl/cap.capnp.h"
#include "idl/gate.h"
#include "idl/names.h"
#include "idl/net.capnp.h"
#include "idl/stream-closed.h"

namespace capnet {
namespace {

constexpr const char* kFixtureHost = "fixture.local";
constexpr size_t kChunk = 65536;   // per ByteStream write and per sink write (netd caps a call at 64 KiB)

std::string reasonName(idl::FetchRefusal r) { return std::string(enumName(r)); }

struct Refused {
  idl::FetchRefusal reason = idl::FetchRefusal::INTERNAL;
  std::string detail;
};

// A Cap'n Proto connection to capd or netd, opened per fetch.
struct RpcConnection {
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> client;
};

kj::Promise<kj::Own<RpcConnection>> dial(kj::AsyncIoProvider& io, const std::string& path) {
  return io.getNetwork().parseAddress(kj::str("unix:", path.c_str())).then([](kj::Own<kj::NetworkAddress> a) {
    return a->connect();
  }).then([](kj::Own<kj::AsyncIoStream> s) {
    auto c = kj::heap<RpcConnection>();
    c->client = kj::heap<capnp::TwoPartyClient>(*s);
    c->stream = kj::mv(s);
    return c;
  });
}

// netd's ByteStream as a kj::AsyncIoStream, so KJ's HTTP client can run over it.
class ByteStreamIo final : public kj::AsyncIoStream {
 public:
  explicit ByteStreamIo(idl::ByteStream::Client s) : stream_(kj::mv(s)) {}

  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override {
    return readLoop(static_cast<kj::byte*>(buffer), minBytes, maxBytes, 0);
  }
  kj::Promise<void> write(const void* buffer, size_t size) override {
    if (size == 0) return kj::READY_NOW;
    size_t n = std::min(size, kChunk);
    auto req = stream_.writeRequest();
    req.setData(kj::arrayPtr(static_cast<const kj::byte*>(buffer), n));
    return req.send().then([this, buffer, size, n](auto&&) {
      return write(static_cast<const kj::byte*>(buffer) + n, size - n);
    });
  }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    if (pieces.size() == 0) return kj::READY_NOW;
    return write(pieces[0].begin(), pieces[0].size()).then([this, pieces]() { return write(pieces.slice(1, pieces.size())); });
  }
  kj::Promise<void> whenWriteDisconnected() override { return kj::NEVER_DONE; }
  void shutdownWrite() override {
    shutdown_ = stream_.shutdownWriteRequest().send().ignoreResult().eagerlyEvaluate([](kj::Exception&&) {});
  }
  // A full close, resolved once netd has released the connection (never rejects).
  kj::Promise<void> close() { return stream_.closeRequest().send().ignoreResult().catch_([](kj::Exception&&) {}); }

 private:
  // What one read answered: the answer's message itself (no copy of its bytes), read in place.
  struct Chunk {
    kj::Maybe<capnp::Response<idl::ByteStream::ReadResults>> answer;
    kj::ArrayPtr<const kj::byte> data;   // points into `answer`'s message
    bool eof = false;
  };

  // Up to kReadAhead reads of up to 64 KiB stay in flight: netd answers a stream's reads in order
  // (its read chain), so the network keeps flowing while KJ's HTTP client consumes what arrived,
  // instead of one round trip per read. Bounded: the reads in flight and the answer being consumed,
  // (kReadAhead + 1) x 64 KiB per stream.
  static constexpr size_t kReadAhead = 4;

  void fill() {
    while (!sawEof_ && pending_.size() < kReadAhead) {
      auto req = stream_.readRequest();
      req.setMaxBytes(65536);
      pending_.push_back(req.send().then([](capnp::Response<idl::ByteStream::ReadResults>&& r) {
        Chunk c;
        c.data = r.getData();
        c.eof = r.getEof();
        c.answer = kj::mv(r);   // the message stays where it is: `data` remains valid
        return c;
      }));
    }
  }

  kj::Promise<size_t> readLoop(kj::byte* buf, size_t minBytes, size_t maxBytes, size_t got) {
    while (got < maxBytes && offset_ < current_.data.size()) {
      size_t n = std::min(current_.data.size() - offset_, maxBytes - got);
      std::copy_n(current_.data.begin() + offset_, n, buf + got);
      offset_ += n;
      got += n;
    }
    if (got >= minBytes || eof_) return got;
    if (current_.eof) {
      eof_ = true;
      return got;
    }
    fill();
    // The oldest read is taken out of the queue while it is awaited: a caller that gives up on this
    // tryRead (the fetch is cancelled) drops it, and the stream is abandoned with the fetch.
    auto next = kj::mv(pending_.front());
    pending_.pop_front();
    return next.then([this, buf, minBytes, maxBytes, got](Chunk&& c) mutable {
      if (c.eof) sawEof_ = true;   // nothing more comes: ask for nothing more
      current_ = kj::mv(c);
      offset_ = 0;
      return readLoop(buf, minBytes, maxBytes, got);
    });
  }

  idl::ByteStream::Client stream_;
  std::deque<kj::Promise<Chunk>> pending_;         // reads in flight, oldest first
  Chunk current_;                                  // the answer being consumed
  size_t offset_ = 0;                              // ... from here
  bool sawEof_ = false;                            // an answer said EOF: ask for nothing more
  bool eof_ = false;                               // ... and it has been consumed
  kj::Maybe<kj::Promise<void>> shutdown_;
};

class FetcherImpl final : public idl::Fetcher::Server {
 public:
  FetcherImpl(Fetchd& fetchd, uid_t caller) : fetchd_(fetchd), caller_(caller) {}

  kj::Promise<void> fetch(FetchContext context) override {
    auto params = context.getParams();
    auto request = params.getRequest();
    auto sink = params.getSink();
    std::string urlText = request.getUrl();
    auto parsed = parseUrl(urlText);
    if (!parsed.ok()) {
      return refuse(context, "-", parsed.code() == UrlError::kScheme ? idl::FetchRefusal::SCHEME : idl::FetchRefusal::BAD_URL,
                    parsed.message());
    }
    Url url = parsed.value();
    FetchLimits limits = fetchd_.limits();
    if (request.getMaxBodyBytes() != 0) limits.maxBodyBytes = std::min(limits.maxBodyBytes, request.getMaxBodyBytes());
    if (request.getMaxHeaderBytes() != 0) limits.maxHeaderBytes = std::min(limits.maxHeaderBytes, request.getMaxHeaderBytes());
    if (request.getTimeoutMs() != 0) limits.totalTimeoutMs = std::min(limits.totalTimeoutMs, request.getTimeoutMs());
    bool head = request.getMethod() == idl::Method::HEAD;
    auto ticket = kj::heapArray<kj::byte>(request.getTicket());
    if (!fetchd_.startFetch(caller_)) {
      return refuse(context, url.host, idl::FetchRefusal::TOO_MANY_FETCHES,
                    std::to_string(fetchd_.fetchesOf(caller_)) + " fetches in flight (network.limits.fetchesPerPrincipal)");
    }
    auto slot = kj::defer([&fetchd = fetchd_, caller = caller_]() { fetchd.endFetch(caller); });

    auto work = dial(fetchd_.io(), fetchd_.paths().capd).then(
        [this, context, url, sink, head, limits, ticket = kj::mv(ticket)](kj::Own<RpcConnection> capd) mutable -> kj::Promise<void> {
          auto broker = capd->client->bootstrap().castAs<idl::Broker>();
          auto check = broker.checkRequest();
          check.setSubjectUid(caller_);
          check.setCapability("net.http.fetch");
          return check.send().then([this, context, url, sink, head, limits, broker, ticket = kj::mv(ticket)](
                                       capnp::Response<idl::Broker::CheckResults>&& r) mutable -> kj::Promise<void> {
            if (!r.getDecision().getAllowed()) {
              return refuse(context, url.host, idl::FetchRefusal::NO_CAP, r.getDecision().getReason());
            }
            // The policy's fetch limits (network.http, timeouts, limits) tighten fetchd's own.
            if (r.hasFetch()) {
              auto f = r.getFetch();
              if (f.getFetchesPerPrincipal() != 0) fetchd_.setFetchesPerPrincipal(f.getFetchesPerPrincipal());
              fetchd_.socketLimits(f.getConnectionsPerUid(), f.getFirstCallDeadlineMs());
              if (f.getMaxBodyBytes() != 0) limits.maxBodyBytes = std::min(limits.maxBodyBytes, f.getMaxBodyBytes());
              if (f.getMaxHeaderBytes() != 0) limits.maxHeaderBytes = std::min(limits.maxHeaderBytes, f.getMaxHeaderBytes());
              limits.maxRedirects = std::min(limits.maxRedirects, f.getMaxRedirects());
              if (f.getTotalMs() != 0) limits.totalTimeoutMs = std::min(limits.totalTimeoutMs, f.getTotalMs());
            }
            if (url.host == kFixtureHost) return serveFixture(context, url, sink, head);
            return realFetch(context, broker, url, sink, head, limits, kj::mv(ticket));
          }).attach(kj::mv(capd));
        },
        [this, context, url](kj::Exception&& e) mutable -> kj::Promise<void> {
          return refuse(context, url.host, idl::FetchRefusal::CAPD_UNREACHABLE, e.getDescription().cStr());
        });
    return fetchd_.timer()
        .timeoutAfter(limits.totalTimeoutMs * kj::MILLISECONDS, kj::mv(work))
        .attach(kj::mv(slot))
        .catch_([this, context, url](kj::Exception&& e) mutable -> kj::Promise<void> {
          // A response already written (the body delivered) stands: only what comes after it (the
          // grant's return) was cut short.
          auto written = context.getResults().getResult();
          if (written.isResponse() && written.getResponse().getStatus() != 0) return kj::READY_NOW;
          bool timedOut = std::string(e.getDescription().cStr()).find("timed out") != std::string::npos;
          // A daemon fetchd was talking to died under the call (capd while granting: the only
          // call outside the netd hop, which types its own failures).
          bool lost = e.getType() == kj::Exception::Type::DISCONNECTED;
          return refuse(context, url.host,
                        timedOut ? idl::FetchRefusal::TIMEOUT : lost ? idl::FetchRefusal::CAPD_UNREACHABLE : idl::FetchRefusal::INTERNAL,
                        e.getDescription().cStr());
        });
  }

 private:
  kj::Promise<void> refuse(FetchContext context, const std::string& host, idl::FetchRefusal reason, std::string detail,
                           kj::Maybe<idl::ConnectRefusal> netReason = nullptr) {
    std::string uid = std::to_string(caller_), why = reasonName(reason);
    KJ_IF_MAYBE(n, netReason) {
      auditDenial("fetchd", caller_, "deny",
                  {{"host", host}, {"reason", why}, {"net", enumName(*n)}, {"uid", uid}, {"detail", detail}});
    } else {
      auditDenial("fetchd", caller_, "deny", {{"host", host}, {"reason", why}, {"uid", uid}, {"detail", detail}});
    }
    auto r = context.getResults().initResult().initRefused();
    r.setReason(reason);
    r.setDetail(detail);
    KJ_IF_MAYBE(n, netReason) r.setConnectReason(*n);
    return kj::READY_NOW;
  }

  kj::Promise<void> serveFixture(FetchContext context, Url url, idl::BodySink::Client sink, bool head) {
    StubResponse stub = fetchd_.stub().serve(url.target, head);
    audit("httpstub", "fetch " + std::to_string(stub.status), {{"url", url.target}});
    auto begin = sink.beginRequest();
    begin.setStatus(stub.status);
    auto hs = begin.initHeaders(static_cast<unsigned>(stub.headers.size()));
    for (unsigned i = 0; i < hs.size(); ++i) {
      hs[i].setName(stub.headers[i].first);
      hs[i].setValue(stub.headers[i].second);
    }
    begin.setContentLength(static_cast<int64_t>(stub.contentLength));
    auto body = std::make_shared<std::string>(std::move(stub.body));
    return begin.send().then([this, sink, body](auto&&) mutable { return pump(sink, body, 0); })
        .then([sink]() mutable { return sink.doneRequest().send().ignoreResult(); })
        .then([context, url, stub = std::move(stub), body]() mutable {
          auto r = context.getResults().initResult().initResponse();
          r.setStatus(stub.status);
          auto hs = r.initHeaders(static_cast<unsigned>(stub.headers.size()));
          for (unsigned i = 0; i < hs.size(); ++i) {
            hs[i].setName(stub.headers[i].first);
            hs[i].setValue(stub.headers[i].second);
          }
          r.setBodyBytes(body->size());
          r.setFinalUrl(url.text());
          r.setBackend("httpstubd");
        });
  }

  kj::Promise<void> pump(idl::BodySink::Client sink, std::shared_ptr<std::string> body, size_t off) {
    if (off >= body->size()) return kj::READY_NOW;
    size_t n = std::min(kChunk, body->size() - off);
    auto w = sink.writeRequest();
    w.setChunk(kj::arrayPtr(reinterpret_cast<const kj::byte*>(body->data() + off), n));
    return w.send().then([this, sink, body, off, n]() mutable { return pump(sink, body, off + n); });
  }

  // One hop of a real fetch. The first hop redeems the caller's ticket for a grant; a same-origin
  // redirect reuses that grant (same scope) for the next hop, which starts only after this hop's
  // connection to netd (and its stream) has been released.
  kj::Promise<void> realFetch(FetchContext context, idl::Broker::Client broker, Url url, idl::BodySink::Client sink,
                              bool head, FetchLimits limits, kj::Array<kj::byte> ticket,
                              kj::Array<kj::byte> grant = nullptr, uint32_t redirects = 0) {
    kj::Promise<kj::Array<kj::byte>> granted = nullptr;
    if (grant.size() != 0) {
      granted = kj::mv(grant);
    } else {
      auto req = broker.requestGrantForRequest();
      req.setTicket(ticket);
      auto scope = req.initScope();
      scope.setScheme(url.scheme);
      scope.setHost(url.host);
      scope.setPort(url.port);
      granted = req.send().then([this, context, url](capnp::Response<idl::Broker::RequestGrantForResults>&& g) mutable
                                    -> kj::Promise<kj::Array<kj::byte>> {
        auto result = g.getResult();
        if (!result.isGranted()) {
          auto refused = result.getRefused();
          idl::FetchRefusal reason = idl::FetchRefusal::NO_CAP;
          switch (refused.getReason()) {
            case idl::GrantRefusal::DEVNET_OFF: reason = idl::FetchRefusal::DEVNET_OFF; break;
            case idl::GrantRefusal::UNKNOWN_HOST: reason = idl::FetchRefusal::UNKNOWN_HOST; break;
            case idl::GrantRefusal::NETD_UNREACHABLE: reason = idl::FetchRefusal::NETD_UNREACHABLE; break;
            case idl::GrantRefusal::BAD_SCOPE: reason = idl::FetchRefusal::BAD_URL; break;
            default: reason = idl::FetchRefusal::NO_CAP; break;
          }
          return refuse(context, url.host, reason, refused.getDetail()).then([]() { return kj::Array<kj::byte>(); });
        }
        return kj::heapArray<kj::byte>(result.getGranted().getToken());
      });
    }
    return granted.then([this, context, broker, url, sink, head, limits, redirects](
                            kj::Array<kj::byte> token) mutable -> kj::Promise<void> {
      if (token.size() == 0) return kj::READY_NOW;   // refused, results written.
      auto tokenCopy = kj::heapArray<kj::byte>(token);
      auto hop = dial(fetchd_.io(), fetchd_.paths().netd).then(
          [this, context, broker, url, sink, head, limits, redirects, token = kj::mv(token)](
              kj::Own<RpcConnection> netd) mutable -> kj::Promise<kj::Maybe<Url>> {
            auto net = netd->client->bootstrap().castAs<idl::NetConnect>();
            auto c = net.connectRequest();
            c.setGrant(token);
            c.setHost(url.host);
            c.setPort(url.port);
            c.setUseTls(url.scheme == "https");
            return c.send().then([this, context, url, sink, head, limits, redirects](
                                     capnp::Response<idl::NetConnect::ConnectResults>&& r) mutable
                                     -> kj::Promise<kj::Maybe<Url>> {
              auto res = r.getResult();
              if (!res.isConnected()) {
                auto why = res.getRefused();
                idl::FetchRefusal reason = idl::FetchRefusal::CONNECT_FAILED;
                auto code = why.getReason();
                if (code == idl::ConnectRefusal::DEVNET_OFF) reason = idl::FetchRefusal::DEVNET_OFF;
                else if (code == idl::ConnectRefusal::NO_OS_STACK) reason = idl::FetchRefusal::NO_OS_STACK;
                else if (code == idl::ConnectRefusal::CAPD_UNREACHABLE) reason = idl::FetchRefusal::CAPD_UNREACHABLE;
                else if (code >= idl::ConnectRefusal::TLS_UNTRUSTED_ISSUER && code <= idl::ConnectRefusal::TLS_HANDSHAKE_FAILED)
                  reason = idl::FetchRefusal::TLS_FAILED;
                return refuse(context, url.host, reason, std::string(why.getDetail().cStr()), code)
                    .then([]() -> kj::Maybe<Url> { return nullptr; });
              }
              return http(context, res.getConnected().getStream(), url, sink, head, limits, redirects);
            }).attach(kj::mv(netd));   // the connection to netd carries the stream: kept for this hop only.
          })
          // Whatever fails in the hop (the dial, the connect, the exchange) is a typed refusal.
          .catch_([this, context, url](kj::Exception&& e) mutable { return refuseHop(context, url, kj::mv(e), idl::FetchRefusal::NETD_UNREACHABLE); });
      // By the time this continuation runs, the hop above (stream, HTTP client, netd connection)
      // has been destroyed: the next hop opens only after this one closed.
      return hop.then([this, context, broker, sink, head, limits, redirects, tokenCopy = kj::mv(tokenCopy)](
                          kj::Maybe<Url> next) mutable -> kj::Promise<void> {
        KJ_IF_MAYBE(n, next) {
          return realFetch(context, broker, kj::mv(*n), sink, head, limits, nullptr, kj::mv(tokenCopy), redirects + 1);
        }
        // The fetch is over (answered or refused): its grant goes back to capd at once, so a
        // principal's live grants count its fetches in flight, not its fetches of the last minute
        // (limits.grantsPerPrincipal). Best effort: an expiring grant ends anyway.
        auto revoke = broker.revokeRequest();
        revoke.setToken(tokenCopy);
        return fetchd_.timer()
            .timeoutAfter(2 * kj::SECONDS, revoke.send().ignoreResult())
            .catch_([](kj::Exception&&) {});
      });
    });
  }

  // One HTTP exchange over a stream. Resolves with the next URL when a same-origin redirect is to
  // be followed, else null (the results are written: a response or a refusal).
  kj::Promise<kj::Maybe<Url>> http(FetchContext context, idl::ByteStream::Client stream, Url url,
                                   idl::BodySink::Client sink, bool head, FetchLimits limits, uint32_t redirects) {
    auto io = kj::heap<ByteStreamIo>(kj::mv(stream));
    auto& ioRef = *io;   // attached below, so it outlives every continuation here.
    auto table = kj::heap<kj::HttpHeaderTable>();
    auto client = kj::newHttpClient(*table, *io);
    kj::HttpHeaders headers(*table);
    headers.set(kj::HttpHeaderId::HOST, url.host);
    headers.add("User-Agent", "capnet-fetchd");
    auto request = client->request(head ? kj::HttpMethod::HEAD : kj::HttpMethod::GET, url.target, headers, uint64_t(0));
    return request.response.then([this, context, url, sink, limits, redirects, &ioRef](
                                     kj::HttpClient::Response&& resp) mutable -> kj::Promise<kj::Maybe<Url>> {
      auto done = [](kj::Promise<void> p) { return p.then([]() -> kj::Maybe<Url> { return nullptr; }); };
      uint64_t headerBytes = 0;
      std::vector<std::pair<std::string, std::string>> hs;
      resp.headers->forEach([&](kj::StringPtr name, kj::StringPtr value) {
        headerBytes += name.size() + value.size() + 4;
        hs.emplace_back(name.cStr(), value.cStr());
      });
      if (headerBytes > limits.maxHeaderBytes) {
        return done(refuse(context, url.host, idl::FetchRefusal::HEADER_TOO_LARGE,
                           std::to_string(headerBytes) + " header bytes > " + std::to_string(limits.maxHeaderBytes)));
      }
      if (resp.statusCode == 301 || resp.statusCode == 302 || resp.statusCode == 303 || resp.statusCode == 307 ||
          resp.statusCode == 308) {
        // Redirects are followed only to the same origin (scheme, host and port), up to the limit;
        // anything else is refused, loudly. Location is an RFC 3986 reference resolved against
        // this request's URL ("next.html", "../a", "//host/x", "?q", absolute).
        std::string location = resp.headers->get(kj::HttpHeaderId::LOCATION).orDefault("").cStr();
        auto next = resolveReference(url, location);
        bool sameOrigin = next.ok() && next->host == url.host && next->port == url.port && next->scheme == url.scheme;
        if (!sameOrigin) return done(refuse(context, url.host, idl::FetchRefusal::CROSS_HOST_REDIRECT, location));
        if (redirects >= limits.maxRedirects) {
          return done(refuse(context, url.host, idl::FetchRefusal::TOO_MANY_REDIRECTS,
                             "more than " + std::to_string(limits.maxRedirects) + " redirects"));
        }
        audit("fetchd", "redirect", {{"host", url.host}, {"to", next->target}, {"n", std::to_string(redirects + 1)}});
        // This hop's connection is closed (and released by netd) before the next one opens.
        return ioRef.close().then([next = next.value()]() mutable { return kj::Maybe<Url>(kj::mv(next)); });
      }
      KJ_IF_MAYBE(len, resp.body->tryGetLength()) {
        if (*len > limits.maxBodyBytes) {
          return done(refuse(context, url.host, idl::FetchRefusal::BODY_TOO_LARGE,
                             std::to_string(*len) + " bytes announced > " + std::to_string(limits.maxBodyBytes)));
        }
      }
      int64_t contentLength = -1;
      KJ_IF_MAYBE(len, resp.body->tryGetLength()) { contentLength = static_cast<int64_t>(*len); }
      auto begin = sink.beginRequest();
      begin.setStatus(static_cast<uint16_t>(resp.statusCode));
      auto out = begin.initHeaders(static_cast<unsigned>(hs.size()));
      for (unsigned i = 0; i < out.size(); ++i) {
        out[i].setName(hs[i].first);
        out[i].setValue(hs[i].second);
      }
      begin.setContentLength(contentLength);
      auto body = kj::mv(resp.body);
      auto& bodyRef = *body;
      uint16_t status = static_cast<uint16_t>(resp.statusCode);
      return done(begin.send().then([this, &bodyRef, sink, limits](auto&&) mutable { return copyBody(bodyRef, sink, limits, 0); })
          .then([this, context, url, sink, status, hs, redirects](uint64_t total) mutable -> kj::Promise<void> {
            if (total > fetchd_.limits().maxBodyBytes || total == UINT64_MAX) {
              return refuse(context, url.host, idl::FetchRefusal::BODY_TOO_LARGE, "body exceeds the limit");
            }
            return sink.doneRequest().send().then([context, url, status, hs, total, redirects](auto&&) mutable {
              auto r = context.getResults().initResult().initResponse();
              r.setStatus(status);
              auto out = r.initHeaders(static_cast<unsigned>(hs.size()));
              for (unsigned i = 0; i < out.size(); ++i) {
                out[i].setName(hs[i].first);
                out[i].setValue(hs[i].second);
              }
              r.setBodyBytes(total);
              r.setFinalUrl(url.text());
              r.setRedirects(redirects);
              r.setBackend("netd");
              audit("fetchd", "fetch", {{"host", url.host}, {"status", std::to_string(status)}, {"bytes", std::to_string(total)}});
            });
          })
          .attach(kj::mv(body)));
    })
    // Reading the response or its body, or writing to the sink, failed: typed (the stream's closing
    // reason, netd gone) or the server's fault.
    .catch_([this, context, url](kj::Exception&& e) mutable { return refuseHop(context, url, kj::mv(e), idl::FetchRefusal::BAD_RESPONSE); })
    .attach(kj::mv(io), kj::mv(table), kj::mv(client));   // destroyed in reverse: client first.
  }

  // A failure during a hop, as the refusal it is: netd closed the stream under the fetch (capd
  // lost, devnet off, the grant revoked or expired: that reason), netd went away (netdUnreachable),
  // or `otherwise` (the server's fault in the exchange; netd's in the connect).
  kj::Promise<kj::Maybe<Url>> refuseHop(FetchContext context, const Url& url, kj::Exception&& e, idl::FetchRefusal otherwise) {
    auto none = []() -> kj::Maybe<Url> { return nullptr; };
    KJ_IF_MAYBE(closed, streamClosedReason(e)) {
      idl::FetchRefusal why = *closed == idl::ConnectRefusal::CAPD_UNREACHABLE ? idl::FetchRefusal::CAPD_UNREACHABLE
                              : *closed == idl::ConnectRefusal::DEVNET_OFF    ? idl::FetchRefusal::DEVNET_OFF
                                                                              : idl::FetchRefusal::CONNECT_FAILED;
      return refuse(context, url.host, why, e.getDescription().cStr(), *closed).then(none);
    }
    if (e.getType() == kj::Exception::Type::DISCONNECTED) {
      return refuse(context, url.host, idl::FetchRefusal::NETD_UNREACHABLE, e.getDescription().cStr()).then(none);
    }
    return refuse(context, url.host, otherwise, e.getDescription().cStr()).then(none);
  }

  // Streams the body to the sink chunk by chunk (each write waits for the sink: flow control).
  // Resolves with the byte count, or UINT64_MAX when the body went over the limit.
  kj::Promise<uint64_t> copyBody(kj::AsyncInputStream& body, idl::BodySink::Client sink, FetchLimits limits, uint64_t total) {
    auto buf = kj::heapArray<kj::byte>(kChunk);
    auto& b = buf;
    return body.tryRead(b.begin(), 1, b.size()).then(
        [this, &body, sink, limits, total, buf = kj::mv(buf)](size_t n) mutable -> kj::Promise<uint64_t> {
          if (n == 0) return total;
          if (total + n > limits.maxBodyBytes) return uint64_t(UINT64_MAX);
          auto w = sink.writeRequest();
          w.setChunk(buf.slice(0, n));
          return w.send().then([this, &body, sink, limits, total, n]() mutable {
            return copyBody(body, sink, limits, total + n);
          });
        });
  }

  Fetchd& fetchd_;
  uid_t caller_;
};

// fetchd has no policy of its own: its gate answers from what capd said of the caller when it
// connected (Broker.describe); fetch() asks capd again on every call (Broker.check), so a reload
// that takes net.http.fetch away applies to connections already open. `facts` null: capd could
// not be asked, and every fetch will say capdUnreachable.
struct CallerFacts {
  std::set<std::string, std::less<>> capabilities;
};

class FetchdAuthorizer final : public Authorizer {
 public:
  FetchdAuthorizer(uid_t uid, kj::Maybe<CallerFacts> facts) : uid_(uid), facts_(kj::mv(facts)) {}
  bool isPrincipal() const override { return true; }   // only principals (or capd unknown) get here.
  bool isCapd() const override { return false; }
  bool holds(std::string_view capability) const override {
    KJ_IF_MAYBE(f, facts_) { return f->capabilities.count(capability) != 0; }
    return true;   // capd unreachable: fetch() refuses with the typed reason.
  }
  std::string who() const override { return "uid:" + std::to_string(uid_); }

 private:
  uid_t uid_;
  kj::Maybe<CallerFacts> facts_;
};

}  // namespace

bool Fetchd::startFetch(uid_t caller) {
  size_t& n = inFlight_[caller];
  if (n >= fetchesPerPrincipal_) {
    if (n == 0) inFlight_.erase(caller);
    return false;
  }
  ++n;
  return true;
}

void Fetchd::endFetch(uid_t caller) {
  auto it = inFlight_.find(caller);
  if (it != inFlight_.end() && --it->second == 0) inFlight_.erase(it);
}

size_t Fetchd::fetchesOf(uid_t caller) const {
  auto it = inFlight_.find(caller);
  return it == inFlight_.end() ? 0 : it->second;
}

Fetchd::Fetchd(kj::AsyncIoProvider& io, kj::Timer& timer, FetchdPaths paths, HttpStub& stub, FetchLimits limits)
    : io_(io), timer_(timer), paths_(std::move(paths)), stub_(stub), limits_(limits) {}

idl::Fetcher::Client Fetchd::fetcherFor(uid_t caller) {
  return gated<idl::Fetcher>(kj::heap<FetcherImpl>(*this, caller), kj::heap<FetchdAuthorizer>(caller, nullptr), "fetchd");
}

kj::Promise<kj::Maybe<capnp::Capability::Client>> Fetchd::connectionFor(uid_t caller) {
  auto asked = dial(io_, paths_.capd).then([caller](kj::Own<RpcConnection> capd) {
    auto req = capd->client->bootstrap().castAs<idl::Broker>().describeRequest();
    req.setUid(caller);
    return req.send().then([](capnp::Response<idl::Broker::DescribeResults>&& r) -> kj::Maybe<kj::Maybe<CallerFacts>> {
      if (!r.getIsPrincipal()) return nullptr;
      CallerFacts f;
      for (auto c : r.getCapabilities()) f.capabilities.insert(c.cStr());
      return kj::Maybe<CallerFacts>(kj::mv(f));
    }).attach(kj::mv(capd));
  });
  return timer_.timeoutAfter(5 * kj::SECONDS, kj::mv(asked))
      .then([this, caller](kj::Maybe<kj::Maybe<CallerFacts>> facts) -> kj::Maybe<capnp::Capability::Client> {
        KJ_IF_MAYBE(f, facts) {
          return capnp::Capability::Client(gated<idl::Fetcher>(
              kj::heap<FetcherImpl>(*this, caller), kj::heap<FetchdAuthorizer>(caller, kj::mv(*f)), "fetchd"));
        }
        auditDenial("fetchd", caller, "refuse-connection", {{"reason", "not-a-principal"}, {"uid", std::to_string(caller)}});
        return nullptr;
      }, [this, caller](kj::Exception&& e) -> kj::Maybe<capnp::Capability::Client> {
        audit("fetchd", "capd-unreachable", {{"uid", std::to_string(caller)}, {"detail", e.getDescription().cStr()}});
        return capnp::Capability::Client(fetcherFor(caller));
      });
}

}  // namespace capnet

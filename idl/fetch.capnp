@0x991762b147cdfb1e;
# fetchd's interface for apps: http(s) fetches. The fixture path (http://fixture.local/) is the
# default and never touches the network; real http(s) goes through a capd grant and netd, and
# only while devnet is on.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("capnet::idl");
using import "authority.capnp".requires;
using Net = import "net.capnp";

enum Method {
  get @0;
  head @1;
}

struct Header {
  name @0 :Text;
  value @1 :Text;
}

struct FetchRequest {
  url @0 :Text;             # http:// or https://, ASCII host, no userinfo; the fragment is dropped.
  method @1 :Method;
  maxBodyBytes @2 :UInt64;  # 0 = the config's limit; larger than the config's is clamped.
  maxHeaderBytes @3 :UInt32;# 0 = the config's limit.
  timeoutMs @4 :UInt32;     # total; 0 = the config's.
  ticket @5 :Data;          # real hosts only: a ticket from capd's Broker.requestTicket naming
                            # fetchd and this URL's scheme, host and port. Without one fetchd
                            # cannot obtain a grant for you: it never acts in your name unasked.
}

enum FetchRefusal {
  # The zero value denies.
  internal @0;
  noCap @1;              # the caller lacks net.http.fetch (or net.http.devnet for real hosts).
  devnetOff @2;
  badUrl @3;             # detail names the part of the URL and why.
  scheme @4;             # a scheme other than http or https.
  unknownHost @5;
  connectFailed @6;      # detail carries netd's refusal reason.
  tlsFailed @7;          # detail carries netd's TLS reason.
  timeout @8;
  headerTooLarge @9;
  bodyTooLarge @10;      # never truncated silently: the fetch fails instead.
  crossHostRedirect @11;
  tooManyRedirects @12;
  badResponse @13;       # malformed HTTP from the server.
  noOsStack @14;
  capdUnreachable @15;
  netdUnreachable @16;
  notFound @17;          # fixture path: no such fixture (the response is still a 404).
  tooManyFetches @18;    # the caller has network.limits.fetchesPerPrincipal fetches in flight.
}

struct FetchResult {
  union {
    response :group {
      status @0 :UInt16;
      headers @1 :List(Header);
      bodyBytes @2 :UInt64;      # bytes delivered to the sink.
      finalUrl @3 :Text;         # after same-host redirects.
      redirects @4 :UInt32;
      connection @5 :Net.ConnectionInfo; # empty for the fixture path.
      backend @6 :Text;          # "httpstubd" or "netd".
    }
    refused :group {
      reason @7 :FetchRefusal;
      detail @8 :Text;
      connectReason @9 :Net.ConnectRefusal;
      # For connectFailed and tlsFailed: netd's typed reason (e.g. tlsExpired); `internal`
      # (the zero value) for every other refusal.
    }
  }
}

interface BodySink {
  # Passed in by the caller; fetchd streams the response into it. `-> stream` gives flow
  # control: fetchd waits for the caller before reading more from the network.

  begin @0 (status :UInt16, headers :List(Header), contentLength :Int64) -> () $requires("held");
  # Once, before any body bytes; contentLength -1 when unknown (chunked). Caller: fetchd.

  write @1 (chunk :Data) -> stream $requires("held");
  # Caller: fetchd.

  done @2 () -> () $requires("held");
  # After the last chunk, only when the body arrived whole. Caller: fetchd.
}

interface Fetcher {
  # Served by fetchd on its socket. The caller is the SO_PEERCRED uid.

  fetch @0 (request :FetchRequest, sink :BodySink) -> (result :FetchResult)
      $requires("net.http.fetch");
  # Caller: apps and `capnet fetch`. Real hosts additionally need net.http.devnet (checked by
  # capd when fetchd asks for a grant on the caller's behalf).
}

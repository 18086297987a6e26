@0xf5b4f20831703a87;
# The policy config that policy authors edit, as JSON (config/network.json in the image,
# state:/config/network.json on the persistent disk overrides it).
#
# capd decodes it with capnp::JsonCodec (unknown fields rejected), validates it whole, and only
# then swaps it in. Every default denies: an empty file allows nothing. The JSON Schema in
# schemas/network.schema.json is generated from this file by capnet's schema compiler.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("capnet::idl");
using Json = import "/capnp/compat/json.capnp";

annotation jsonMap @0x86567fb7c10e3f60 (field) :Void;
# On a `List(Entry)` field whose Entry struct is `{key :Text, value :T}`: the JSON form is an
# object keyed by name (`{"devnet.test": "10.0.2.2"}`), not an array. The config decoder and the
# schema compiler both honour it.

annotation format @0xda676075c6ea2d72 (field) :Text;
# A textual field's format, for validation and for the JSON Schema: "ipv4", "date"
# (YYYY-MM-DD, UTC), "capability", "hostname".

annotation range @0x9a4a1f95c9d72ce0 (field) :Range;
struct Range { min @0 :Int64; max @1 :Int64; }
# Inclusive bounds on an integer field, checked by validation and stated in the JSON Schema.

const knownCapabilities :List(Text) = [
  "net.dev.enable", "net.tcp.connect", "net.dns.resolve", "net.tls.validate",
  "net.trust.manage", "net.http.fetch", "net.http.devnet", "net.grant.delegate"
];
# Every capability a config may grant (the `$format("capability")` fields). The reserved
# authority names of authority.capnp ("principal", "capd", "held") are not among them.

struct Config {
  network @0 :Network;
}

struct Network {
  devnet @0 :Devnet;
  principals @1 :List(PrincipalEntry) $jsonMap;
  # Who may do what. A uid absent from this map holds no capability at all.

  hosts @2 :List(HostEntry) $jsonMap;
  # name -> IPv4 address. There is no DNS: a name not listed here does not resolve.

  tls @3 :Tls;
  http @4 :Http;
  timeouts @5 :Timeouts;
  grants @6 :Grants;
  limits @7 :Limits;
  # What one peer may hold at once. A server never spends unbounded memory on behalf of one
  # client: each cap is enforced by the component it governs, and reaching it is a typed refusal
  # with an audit line.
}

struct Limits {
  connectionsPerUid @0 :UInt32 = 8 $range(min = 1, max = 256);
  # Open connections one uid may hold to each daemon socket (capd, netd, fetchd). Enforced by the
  # socket server of each; the refusal is `<daemon>: refuse-connection reason=too-many-connections`.

  firstCallDeadlineMs @1 :UInt32 = 5000 $range(min = 100, max = 600000);
  # A connection that has not completed one call by then is closed (idle sockets hold no slots).

  grantsPerPrincipal @2 :UInt32 = 64 $range(min = 1, max = 4096);
  # Live grants capd keeps per subject principal; more are refused as tooManyGrants.

  streamsPerPrincipal @3 :UInt32 = 16 $range(min = 1, max = 1024);
  # Streams netd holds per holder uid, counting connects still in progress; more are refused as
  # tooManyConnections.

  fetchesPerPrincipal @4 :UInt32 = 4 $range(min = 1, max = 256);
  # Fetches fetchd runs at once per calling uid; more are refused as tooManyFetches.
}

struct Devnet {
  enabled @0 :Bool = false;
  # Real outbound TCP/TLS exists only while this is true. Off by default.
}

struct PrincipalEntry {
  key @0 :Text $format("hostname");   # the principal's name, e.g. "selftest".
  value @1 :Principal;
}

struct Principal {
  uid @0 :UInt32 $range(min = 1, max = 4294967294);
  # The kernel uid (SO_PEERCRED) that identifies this principal. uid 0 cannot be a principal.

  capabilities @1 :List(Text) $format("capability");
  # Any of: net.dev.enable, net.tcp.connect, net.dns.resolve, net.tls.validate,
  # net.trust.manage, net.http.fetch, net.http.devnet, net.grant.delegate (docs/networking/
  # config-reference.md says what each allows).
}

struct HostEntry {
  key @0 :Text $format("hostname");
  value @1 :Text $format("ipv4");
}

enum CertTimePolicy {
  enforce @0 $Json.name("enforce");
  ignoreValidity @1 $Json.name("ignore-validity");
  # Honoured only while devnet is on, and loud: every connection that uses it logs a warning.
}

enum TlsVersion {
  tls13 @0 $Json.name("1.3");
  tls12 @1 $Json.name("1.2");
}

struct Tls {
  certTimePolicy @0 :CertTimePolicy;
  minVersion @1 :TlsVersion;
  # The default is TLS 1.3. "1.2" here lowers the floor for every host; prefer allowTls12.

  allowTls12 @2 :List(Text) $format("hostname");
  # Hosts that may negotiate TLS 1.2. Everyone else needs 1.3.

  pins @3 :List(PinEntry) $jsonMap;
  # host -> pin set. Optional; a host without an entry is checked against the roots only.
}

struct PinEntry {
  key @0 :Text $format("hostname");
  value @1 :PinSet;
}

struct PinSet {
  spkiSha256 @0 :List(Text);
  # Base64 SHA-256 digests of SubjectPublicKeyInfo. At least two: the live key and a backup,
  # so a key rotation cannot lock the host out.

  expires @1 :Text $format("date");
  # YYYY-MM-DD. Past it the pins are skipped (and that is logged); the roots still apply.
}

enum RedirectPolicy {
  sameHost @0 $Json.name("same-host");
  none @1 $Json.name("none");
}

struct Http {
  redirects @0 :RedirectPolicy;
  maxRedirects @1 :UInt32 = 5 $range(min = 0, max = 20);
  maxHeaderBytes @2 :UInt32 = 16384 $range(min = 1024, max = 1048576);
  maxBodyBytes @3 :UInt64 = 8388608 $range(min = 1, max = 1073741824);
}

struct Timeouts {
  connectMs @0 :UInt32 = 5000 $range(min = 1, max = 600000);
  handshakeMs @1 :UInt32 = 5000 $range(min = 1, max = 600000);
  totalMs @2 :UInt32 = 30000 $range(min = 1, max = 3600000);
}

struct Grants {
  lifetimeMs @0 :UInt32 = 60000 $range(min = 1000, max = 86400000);
  # How long a minted grant may be presented to netd for a new connection.

  maxStreamMs @1 :UInt32 = 300000 $range(min = 0, max = 86400000);
  # How long a stream may outlive the expiry of the grant it was opened under: netd closes it
  # then (capExpired). No stream lives forever.
}

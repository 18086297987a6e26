@0xf5b4f20831703a86;
# capd's interfaces: the broker apps and services call, and the privileged control channel
# through which capd tells netd what policy allows.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("capnet::idl");
using import "authority.capnp".requires;
using Config = import "config.capnp";
using Trust = import "trust.capnp";

struct Scope {
  # What a grant allows: exactly one scheme, host and port.
  scheme @0 :Text;   # "tcp" | "tls" (direct connects) | "http" | "https" (through fetchd).
  host @1 :Text;     # a name from the config's hosts map, or a dotted IPv4 literal.
  port @2 :UInt16;
}

struct Pin {
  spkiSha256 @0 :Data; # 32 bytes: SHA-256 of the certificate's SubjectPublicKeyInfo DER.
}

struct TlsPolicy {
  minVersion @0 :Config.TlsVersion;
  timePolicy @1 :Config.CertTimePolicy;
  pins @2 :List(Pin);       # empty = no pinning; else any pin of the set must match.
  pinsExpireAtMs @3 :Int64; # wall-clock ms; past it the pins are skipped (and that is logged).
}

struct Grant {
  # Registered by capd with netd. netd holds no config: everything it decides comes from here.
  token @0 :Data;           # >= 16 bytes from getrandom(2): unforgeable.
  subjectUid @1 :UInt32;    # the principal on whose behalf (the app).
  holderUid @2 :UInt32;     # the uid that may present it to netd (the app, or fetchd).
  scope @3 :Scope;
  address @4 :UInt32;       # IPv4 (host byte order) the scope's host resolves to.
  expiresAtMs @5 :Int64;    # wall-clock ms since the epoch.
  tls @6 :TlsPolicy;
  connectTimeoutMs @7 :UInt32;
  handshakeTimeoutMs @8 :UInt32;
  id @9 :UInt64;            # capd's serial for this grant: names it in audit lines (the token never appears).
}

struct PrincipalFacts {
  # One principal of capd's policy as netd needs it: netd's gate decides from these facts.
  uid @0 :UInt32;
  capabilities @1 :List(Text);
}

struct NetLimits {
  # Per-principal limits netd enforces (network.limits and network.grants in the config).
  streamsPerPrincipal @0 :UInt32;  # open and still-connecting streams per holder uid.
  connectionsPerUid @1 :UInt32;    # connections to netd's app socket per uid.
  firstCallDeadlineMs @2 :UInt32;  # a connection that completes no call by then is closed.
  maxStreamMs @3 :UInt32;          # how long a stream may outlive its grant's expiry.
}

enum GrantRefusal {
  # The zero value denies.
  internal @0;
  devnetOff @1;
  configInvalid @2;     # capd's config did not validate; everything is denied until it does.
  unknownPrincipal @3;  # the caller's (or subject's) uid is not in the config.
  noCap @4;             # the subject lacks a capability the scope needs; detail names it.
  badScope @5;          # unknown scheme, port 0, malformed host.
  unknownHost @6;       # the host is not in the hosts map.
  netdUnreachable @7;   # capd could not register the grant with netd.
  tooManyGrants @8;     # the subject holds network.limits.grantsPerPrincipal live grants.
  policyChanged @9;     # a reload in flight while minting withdrew what the grant needed.
  badTicket @10;        # the delegation ticket is unknown, used, expired, for another delegate or scope.
}

struct TicketResult {
  union {
    issued :group {
      ticket @0 :Data;       # 16 bytes from getrandom(2), one-shot.
      expiresAtMs @1 :Int64;
    }
    refused :group {
      reason @2 :GrantRefusal;
      detail @3 :Text;
    }
  }
}

struct GrantResult {
  union {
    granted :group {
      token @0 :Data;
      expiresAtMs @1 :Int64;
    }
    refused :group {
      reason @2 :GrantRefusal;
      detail @3 :Text;
    }
  }
}

struct FetchPolicy {
  # What fetchd enforces, from capd's policy: network.http, network.timeouts.totalMs and
  # network.limits.fetchesPerPrincipal. Sent with every Broker.check so a reload reaches fetchd.
  maxBodyBytes @0 :UInt64;
  maxHeaderBytes @1 :UInt32;
  maxRedirects @2 :UInt32;        # 0 when network.http.redirects is "none".
  totalMs @3 :UInt32;
  fetchesPerPrincipal @4 :UInt32;
  connectionsPerUid @5 :UInt32;   # fetchd's own socket, as every daemon's.
  firstCallDeadlineMs @6 :UInt32;
}

struct Decision {
  allowed @0 :Bool;     # false unless every rule allowed.
  reason @1 :Text;      # the first rule that denied, or "allowed".
  rules @2 :List(Text); # each rule evaluated, in order, with its outcome.
}

interface Broker {
  # Served by capd on its broker socket. The caller is the SO_PEERCRED uid, mapped to a
  # principal through the config; an unknown uid holds nothing.

  requestGrant @0 (scope :Scope) -> (result :GrantResult) $requires("net.tcp.connect");
  # Caller: an app that connects through netd itself (schemes tcp, tls). The grant is bound to
  # the caller's uid as both subject and holder.

  requestGrantFor @1 (ticket :Data, scope :Scope) -> (result :GrantResult)
      $requires("net.grant.delegate");
  # Caller: fetchd, on behalf of the app that handed it `ticket` (schemes http, https). The
  # ticket names the subject: capd minted it for that app, bound to the caller's uid and to this
  # scope, so a delegate can act only for a principal that asked, only for what it asked. The
  # subject must hold what the scope needs; the grant's holder is the caller.

  revoke @2 (token :Data) -> (revoked :Bool) $requires("principal");
  # Caller: the holder or subject of the grant; anyone else learns nothing (revoked = false).

  check @3 (subjectUid :UInt32, capability :Text) -> (decision :Decision, fetch :FetchPolicy)
      $requires("net.grant.delegate");
  # Caller: fetchd, to learn whether the app may use the fixture path (net.http.fetch), and the
  # limits the policy sets for fetches.

  explain @4 (principal :Text, url :Text) -> (decision :Decision) $requires("principal");
  # Caller: policy authors through `capd --explain`; a dry run that mints nothing.

  reload @5 () -> (applied :Bool, errors :List(Text)) $requires("net.dev.enable");
  # Caller: an operator principal. Validates the config whole and swaps it atomically, or keeps
  # the old one and returns the errors. Devnet going off revokes every grant.

  status @6 () -> (devnetEnabled :Bool, configValid :Bool, configSource :Text,
                   netdConnected :Bool, activeGrants :UInt32) $requires("principal");
  # Caller: selftests and tools.

  requestTicket @7 (scope :Scope, delegate :Text) -> (result :TicketResult)
      $requires("net.http.fetch");
  # Caller: an app that wants `delegate` (a principal holding net.grant.delegate, normally
  # "fetchd") to fetch `scope` for it. The ticket is one-shot and expires after 10 s; only the
  # delegate's uid can redeem it, only for this scope (requestGrantFor).

  describe @8 (uid :UInt32) -> (isPrincipal :Bool, capabilities :List(Text))
      $requires("net.grant.delegate");
  # Caller: fetchd, when a uid connects to its socket: a uid in no policy gets no bootstrap, and
  # fetchd's gate answers from these facts, never "yes" for everyone.
}

interface NetControl {
  # The privileged channel: served by netd on its control socket, which accepts only capd's uid
  # (SO_PEERCRED). When the connection drops netd forgets every grant and denies all connects.

  announce @0 (devnetEnabled :Bool, generation :UInt64, principals :List(PrincipalFacts),
               limits :NetLimits) -> () $requires("capd");
  # Caller: capd, at connect time and after every config swap. Devnet off clears every grant and
  # closes every stream. `principals` replaces netd's view of who may do what.

  register @1 (grant :Grant) -> () $requires("capd");
  # Caller: capd, before it hands the token to the requester.

  revoke @2 (token :Data) -> (found :Bool) $requires("capd");
  # Caller: capd. Closes every stream opened under the grant (capRevoked).

  revokeAll @3 () -> (count :UInt32) $requires("capd");
  # Caller: capd, when a reload removes authority.
}

interface CapdService extends(Broker, Trust.TrustManager) {
  # What capd serves on its broker socket: the Broker, and management of the installed trust roots
  # (idl/trust.capnp). Every method keeps its own $requires.
}

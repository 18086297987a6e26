@0xa5a5f8003566f9fb;
# netd's application-facing interface: the only way to open a real TCP or TLS connection in the OS.
#
# Served by netd on its app socket. Every connect carries a grant token minted by capd
# (cap.capnp); netd checks it against the grants capd registered over the control channel.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("capnet::idl");
using import "authority.capnp".requires;

enum ConnectRefusal {
  # Why netd refused or failed a connect. The zero value is the safe one: an unspecified
  # failure is a refusal.
  internal @0;          # netd could not complete the request (a bug or resource exhaustion).
  devnetOff @1;         # devnet is disabled by policy; nothing connects, grant or not.
  capdUnreachable @2;   # netd has no live control channel from capd, so it knows no policy.
  noOsStack @3;         # no NIC, VFIO unusable or the stack failed to start.
  noCap @4;             # no grant presented, or the token is unknown (forged, never minted).
  capExpired @5;        # the grant's lifetime ended.
  capRevoked @6;        # the grant was revoked (explicitly, or by devnet going off).
  wrongUid @7;          # the grant was minted for another uid.
  outOfScope @8;        # host, port or scheme differ from the grant's scope.
  unknownHost @9;       # the host is not in the hosts map (there is no DNS).
  badRequest @10;       # a malformed field (empty host, port 0, oversized server name...).
  connectTimeout @11;   # no SYN-ACK within the connect timeout.
  connectRefused @12;   # the peer answered RST.
  tlsUntrustedIssuer @13;
  tlsExpired @14;
  tlsNotYetValid @15;
  tlsHostnameMismatch @16;
  tlsPinMismatch @17;
  tlsVersionTooOld @18;
  tlsHandshakeTimeout @19;
  tlsPeerClosed @20;
  tlsPolicyViolation @21; # weak key, SHA-1, no subjectAltName, path rules (RFC 5280).
  tlsHandshakeFailed @22; # any other handshake failure; detail says which.
  tooManyConnections @23;
}

struct Refusal {
  reason @0 :ConnectRefusal;
  detail @1 :Text;      # Human-readable, names the field and the rule.
}

struct TlsRequest {
  # TLS parameters a caller may choose. Everything that is policy (roots, pins, minimum
  # version, certificate time policy) comes from the grant, never from the caller.
  serverName @0 :Text;  # SNI and the name verified against the certificate; empty = host.
}

struct ConnectionInfo {
  remoteAddress @0 :Text;   # dotted IPv4 the host resolved to through the hosts map.
  remotePort @1 :UInt16;
  localPort @2 :UInt16;
  tlsVersion @3 :Text;      # empty for plain TCP, else e.g. "TLSv1.3".
  cipherSuite @4 :Text;
  leafSha256 @5 :Data;      # SHA-256 of the leaf certificate's DER.
  timePolicy @6 :Text;      # "enforce" or "ignore-validity" as applied to this connection.
}

interface ByteStream {
  # One connection. Flow control: read is pulled by the caller; write resolves only once netd
  # has queued the bytes in the stack's send buffer, so a slow peer slows the writer.

  read @0 (maxBytes :UInt32) -> (data :Data, eof :Bool) $requires("held");
  # Up to maxBytes (netd caps it at 64 KiB). Waits until at least one byte or EOF is available.
  # Caller: whoever holds the stream (an app, or fetchd on an app's behalf).

  write @1 (data :Data) -> () $requires("held");
  # At most 64 KiB per call. Fails once the connection is closed or reset.
  # Caller: the holder of the stream.

  shutdownWrite @2 () -> () $requires("held");
  # Half-close: sends FIN (or TLS close_notify then FIN); reads continue.
  # Caller: the holder of the stream.

  close @3 () -> () $requires("held");
  # Full close. Dropping the capability closes too.
  # Caller: the holder of the stream.
}

struct ConnectResult {
  union {
    connected :group {
      stream @0 :ByteStream;
      info @1 :ConnectionInfo;
    }
    refused @2 :Refusal;
  }
}

interface NetConnect {
  # Caller: an app or service (fetchd), over netd's app socket. Trusts nothing in the message:
  # the uid comes from SO_PEERCRED, the authority from the grant capd registered.

  connect @0 (grant :Data, host :Text, port :UInt16, tls :TlsRequest, useTls :Bool)
      -> (result :ConnectResult) $requires("net.tcp.connect");
  # Checked in this order: devnet state -> grant present, valid, unexpired, unrevoked and
  # presented by its holder uid -> scope matches scheme (tcp or tls), host and port -> host
  # resolves through the grant's hosts entry -> TCP connect within the timeout -> TLS (if asked)
  # under the grant's trust policy. Each refusal is a Refusal and one audit line.

  status @1 () -> (stackUp :Bool, stackDetail :Text, devnetEnabled :Bool, capdConnected :Bool,
                   policyKnown :Bool)
      $requires("principal");
  # Caller: selftests and `capnet` tools; reports without revealing grants. policyKnown: the
  # connected capd has announced its policy (before that every connect is capdUnreachable).
}

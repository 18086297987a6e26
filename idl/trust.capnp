@0x84f2e7bccf624a34;
# Management of installed trust roots (state:/trust/installed/). The shipped roots
# (pkg://trust/) are read-only and listed here but cannot be removed.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("capnet::idl");
using import "authority.capnp".requires;

struct Root {
  sha256 @0 :Data;        # fingerprint of the certificate's DER.
  subject @1 :Text;
  notAfter @2 :Text;
  origin @3 :Text;        # "pkg" or "state".
}

interface TrustManager {
  # Served by capd on its broker socket, as part of CapdService (idl/cap.capnp).

  list @0 () -> (roots :List(Root)) $requires("principal");
  # Caller: any principal.

  add @1 (pem :Data) -> (added :Bool, error :Text, root :Root) $requires("net.trust.manage");
  # Caller: a trust administrator. Refuses non-certificates, non-CAs and duplicates; installs
  # atomically (temporary file, fsync, rename, fsync of the directory).

  remove @2 (sha256 :Data) -> (removed :Bool, error :Text) $requires("net.trust.manage");
  # Caller: a trust administrator. Shipped roots cannot be removed.
}

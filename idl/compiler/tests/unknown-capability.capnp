@0xe0b9a9cbe6e3a6a3;
# A misspelt capability would make the method uncallable (no config can grant it): capnpc-capnet
# checks every $requires against config.capnp's knownCapabilities and the reserved names.
using import "/authority.capnp".requires;

interface Typo {
  status @0 () -> () $requires("principal");
  connect @1 () -> () $requires("net.tcp.conect");
}

@0xe0b9a9cbe6e3a6a2;
# capnp itself accepts an annotation twice; capnpc-capnet must not (which one would hold?).
using import "/authority.capnp".requires;

interface Twice {
  once @0 () -> () $requires("held");
  both @1 () -> () $requires("principal") $requires("net.dev.enable");
}

@0xe0b9a9cbe6e3a6a1;
# A schema with one method lacking $requires: capnpc-capnet must refuse it, naming the method.
using import "/authority.capnp".requires;

interface Annotated {
  ok @0 () -> () $requires("principal");
  forgotten @1 () -> ();
}

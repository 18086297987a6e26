@0xc5217a7f5430e08e;
# The authority annotations every capnet interface method carries.
#
# capnet's schema compiler (idl/compiler/) reads these and generates the capability table that
# each server consults before dispatching a call, plus docs/capabilities.md. A method without
# exactly one of them fails the build.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("capnet::idl");

annotation requires(method) :Text;
# The capability the calling principal must hold (as granted in the policy config) before the
# call is dispatched, e.g. `$requires("net.tcp.connect")`. The caller is identified by the
# kernel (SO_PEERCRED uid -> principal), never by a claim inside the message.
#
# Three names are reserved and are not capabilities a config can grant:
#   "principal" -- any principal the config names (an unknown uid is refused).
#   "capd"      -- only capd's uid, on the privileged control channel to netd.
#   "held"      -- possession of the object capability itself is the authority (a byte stream
#                  that netd handed out, a body sink a client passed in).

// What every fuzz target keeps across inputs: its world (an event loop, a daemon, a stack), made on
// the first input and kept until the process exits, and the audit trail silenced (it is not what is
// fuzzed; FUZZ_AUDIT=1 shows it, to see how far an input gets).
#pragma once

#include <cstdlib>
#include <string>

#include "common/audit.h"

namespace capnet::fuzz {

inline void quietAudit() {
  if (::getenv("FUZZ_AUDIT") == nullptr) setAuditSink([](const std::string&) {});
}

// The target's World, constructed once (after quietAudit(), so its set-up is quiet too).
template <class World>
World& world() {
  static World* w = (quietAudit(), new World());
  return *w;
}

}  // namespace capnet::fuzz

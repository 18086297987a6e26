// The two generators of capnet's schema compiler. Each is a pure function of the request, so the
// same schemas always give the same bytes.
#pragma once

#include <string>

#include "idl/compiler/schema-request.h"

namespace capnet::compiler {

struct CapabilityTableFiles {
  std::string header;     // capability-table.h: included as "idl/capability-table.h".
  std::string source;     // capability-table.cpp: the table, sorted by (interfaceId, methodId).
  std::string markdown;   // capabilities.md: the same table for people.
};

// Fails (naming every offending Interface.method) when a method of an interface in a requested
// file has no $requires, has more than one, or names an authority that is neither reserved nor
// in config.capnp's knownCapabilities (which must then be among the compiled schemas).
CompileResult<CapabilityTableFiles> generateCapabilityTable(const SchemaRequest& request);

// JSON Schema (draft 2020-12) for config.capnp's root struct `Config`, or an empty string when
// config.capnp is not among the requested files.
CompileResult<std::string> generateJsonSchema(const SchemaRequest& request);

}  // namespace capnet::compiler

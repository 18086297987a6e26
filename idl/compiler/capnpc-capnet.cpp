// capnpc-capnet: capnet's schema compiler, a Cap'n Proto compiler plugin. The build runs
//
//   capnp compile -I<idl> --src-prefix=<idl> -o<path>/capnpc-capnet:<outdir> idl/*.capnp
//
// and the plugin reads the CodeGeneratorRequest on stdin (its working directory is <outdir>), then
// writes there:
//   capability-table.h/.cpp  every interface method and the authority its `$requires` names, for
//                            the dispatch gate (idl/gate.h);
//   capabilities.md          the same table for people (checked in as docs/capabilities.md);
//   network.schema.json      JSON Schema for config.capnp's `Config` (checked in as
//                            schemas/network.schema.json), when config.capnp is compiled.
// A method without exactly one known `$requires` is an error: the plugin names each such
// Interface.method on stderr, writes nothing and exits 1, so the build fails.

#include <capnp/serialize.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <string>

#include "idl/compiler/generators.h"

namespace {

using capnet::compiler::SchemaRequest;

void report(const std::string& text) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    std::cerr << "capnpc-capnet: " << text.substr(start, nl - start) << "\n";
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
}

bool writeFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) report("cannot write " + path);
  return static_cast<bool>(f);
}

int run() {
  // The request comes from our own build's capnp, but bound it all the same.
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 1ull << 27;   // 1 GiB
  options.nestingLimit = 128;
  capnp::StreamFdMessageReader reader(STDIN_FILENO, options);
  SchemaRequest request(reader.getRoot<capnp::schema::CodeGeneratorRequest>());

  auto table = capnet::compiler::generateCapabilityTable(request);
  auto schema = capnet::compiler::generateJsonSchema(request);
  bool ok = true;
  if (!table) {
    report(table.message());
    ok = false;
  }
  if (!schema) {
    report(schema.message());
    ok = false;
  }
  if (!ok) return 1;
  ok = writeFile("capability-table.h", table->header) && writeFile("capability-table.cpp", table->source) &&
       writeFile("capabilities.md", table->markdown);
  if (ok && !schema->empty()) ok = writeFile("network.schema.json", schema.value());
  return ok ? 0 : 1;
}

}  // namespace

int main() {
  // A malformed request (or a schema-loader failure) arrives as a kj::Exception: report it as
  // the plugin's error instead of aborting.
  try {
    return run();
  } catch (const kj::Exception& e) {
    report(std::string("cannot read the code generator request: ") + e.getDescription().cStr());
    return 1;
  }
}

// The CodeGeneratorRequest `capnp compile` hands a plugin, loaded for the two generators: every
// node in a SchemaLoader, the doc comments from sourceInfo, and the capnet declarations the
// generators key on (authority.capnp's `requires`, config.capnp's annotations and capability list).
#pragma once

#include <capnp/schema-loader.h>
#include <capnp/schema.capnp.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace capnet::compiler {

enum class CompileError {
  kInternal,            // the zero value: an unexpected failure.
  kMissingDeclaration,  // authority.capnp or a config.capnp declaration is not in the request.
  kMissingRequires,     // a method has no $requires.
  kDuplicateRequires,   // a method has more than one $requires.
  kUnknownAuthority,    // $requires names neither a reserved name nor a known capability.
  kUnsupportedType,     // config.capnp uses a type or JSON annotation the schema cannot express.
};

template <typename T>
using CompileResult = Result<T, CompileError>;

// Annotations with fixed ids (capnp/compat/json.capnp and idl/config.capnp declare them).
inline constexpr uint64_t kJsonNameAnnotation = 0xfa5b1fd61c2e7c3dull;
inline constexpr uint64_t kJsonFlattenAnnotation = 0x82d3e852af0336bfull;
inline constexpr uint64_t kJsonDiscriminatorAnnotation = 0xcfa794e8d19a0162ull;
inline constexpr uint64_t kJsonBase64Annotation = 0xd7d879450a253e4bull;
inline constexpr uint64_t kJsonHexAnnotation = 0xf061e22f0ae5c7b5ull;
inline constexpr uint64_t kJsonMapAnnotation = 0x86567fb7c10e3f60ull;
inline constexpr uint64_t kFormatAnnotation = 0xda676075c6ea2d72ull;
inline constexpr uint64_t kRangeAnnotation = 0x9a4a1f95c9d72ce0ull;

// The authority names the gate (idl/gate.h) interprets itself; a config cannot grant them.
inline constexpr std::string_view kReservedAuthorities[] = {"principal", "capd", "held"};

using Annotations = capnp::List<capnp::schema::Annotation>::Reader;

class SchemaRequest {
 public:
  struct File {
    uint64_t id;
    std::string name;   // as capnp displays it, relative to --src-prefix / the import path.
  };

  explicit SchemaRequest(capnp::schema::CodeGeneratorRequest::Reader request);

  capnp::Schema get(uint64_t id) const { return loader_.get(id); }

  // The files named on the command line, sorted by name (so output does not depend on argv order).
  const std::vector<File>& files() const { return files_; }

  // Doc comments, whitespace-normalised (see normaliseDoc); empty when there is none.
  std::string nodeDoc(uint64_t id) const;
  std::string memberDoc(uint64_t id, unsigned index) const;   // field, enumerant or method index.

  // A top-level declaration by file base name and declaration name ("config.capnp", "Config").
  const capnp::schema::Node::Reader* find(std::string_view file, std::string_view name) const;

  // authority.capnp's `requires` annotation; 0 when authority.capnp is not in the request.
  uint64_t requiresAnnotation() const { return requiresId_; }

  // config.capnp's `knownCapabilities`, in declaration order; empty when config.capnp is absent.
  const std::vector<std::string>& knownCapabilities() const { return knownCapabilities_; }

 private:
  capnp::SchemaLoader loader_;
  std::vector<capnp::schema::Node::Reader> nodes_;
  std::vector<File> files_;
  std::map<uint64_t, std::string> nodeDocs_;
  std::map<std::pair<uint64_t, unsigned>, std::string> memberDocs_;
  uint64_t requiresId_ = 0;
  std::vector<std::string> knownCapabilities_;
};

// Joins a doc comment's lines into paragraphs (blank line = paragraph break, "\n" between them),
// trimming each line; a line ending in '/' joins the next without a space (wrapped paths).
std::string normaliseDoc(std::string_view raw);

// The first sentence of the first paragraph ("." followed by a space, or the paragraph's end).
std::string firstSentence(std::string_view doc);

// The value of annotation `id` in `list`, if present. `count` receives how often it occurs.
kj::Maybe<capnp::schema::Value::Reader> findAnnotation(Annotations list, uint64_t id,
                                                       unsigned* count = nullptr);

}  // namespace capnet::compiler

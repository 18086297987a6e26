// A JSON value that keeps its members in insertion order, and its pretty-printer. The schema
// compiler needs byte-stable output (the checked-in schemas/network.schema.json is compared with
// the generated one), so nothing here depends on hashing, locale or floating point.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace capnet::compiler {

class JsonValue {
 public:
  enum class Kind { kNull, kBool, kInteger, kString, kArray, kObject };

  JsonValue() = default;
  static JsonValue boolean(bool v);
  static JsonValue integer(int64_t v);
  static JsonValue unsignedInteger(uint64_t v);
  static JsonValue string(std::string v);
  static JsonValue array();
  static JsonValue object();

  Kind kind() const { return kind_; }

  // Objects: sets `key`, replacing an existing member in place (so its position is kept).
  JsonValue& set(const std::string& key, JsonValue value);
  const JsonValue* find(const std::string& key) const;
  const std::vector<std::pair<std::string, JsonValue>>& members() const { return members_; }

  // Arrays.
  JsonValue& push(JsonValue value);
  const std::vector<JsonValue>& items() const { return items_; }

  // Two-space indentation, one member per line, no trailing newline.
  std::string format() const;

 private:
  void formatInto(std::string& out, int indent) const;

  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  std::string scalar_;   // integers already in decimal; strings unescaped.
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

}  // namespace capnet::compiler

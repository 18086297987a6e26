#include "idl/compiler/json-writer.h"

#include <cstdio>

namespace capnet::compiler {

JsonValue JsonValue::boolean(bool v) {
  JsonValue j;
  j.kind_ = Kind::kBool;
  j.bool_ = v;
  return j;
}

JsonValue JsonValue::integer(int64_t v) {
  JsonValue j;
  j.kind_ = Kind::kInteger;
  j.scalar_ = std::to_string(v);
  return j;
}

JsonValue JsonValue::unsignedInteger(uint64_t v) {
  JsonValue j;
  j.kind_ = Kind::kInteger;
  j.scalar_ = std::to_string(v);
  return j;
}

JsonValue JsonValue::string(std::string v) {
  JsonValue j;
  j.kind_ = Kind::kString;
  j.scalar_ = std::move(v);
  return j;
}

JsonValue JsonValue::array() {
  JsonValue j;
  j.kind_ = Kind::kArray;
  return j;
}

JsonValue JsonValue::object() {
  JsonValue j;
  j.kind_ = Kind::kObject;
  return j;
}

JsonValue& JsonValue::set(const std::string& key, JsonValue value) {
  for (auto& m : members_) {
    if (m.first == key) {
      m.second = std::move(value);
      return *this;
    }
  }
  members_.emplace_back(key, std::move(value));
  return *this;
}

const JsonValue* JsonValue::find(const std::string& key) const {
  for (const auto& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

JsonValue& JsonValue::push(JsonValue value) {
  items_.push_back(std::move(value));
  return *this;
}

std::string JsonValue::format() const {
  std::string out;
  formatInto(out, 0);
  return out;
}

namespace {

void quote(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

}  // namespace

void JsonValue::formatInto(std::string& out, int indent) const {
  const std::string pad(static_cast<size_t>(indent) * 2, ' ');
  const std::string inner(static_cast<size_t>(indent + 1) * 2, ' ');
  switch (kind_) {
    case Kind::kNull: out += "null"; return;
    case Kind::kBool: out += bool_ ? "true" : "false"; return;
    case Kind::kInteger: out += scalar_; return;
    case Kind::kString: quote(out, scalar_); return;
    case Kind::kArray:
      if (items_.empty()) {
        out += "[]";
        return;
      }
      out += "[\n";
      for (size_t i = 0; i < items_.size(); ++i) {
        out += inner;
        items_[i].formatInto(out, indent + 1);
        out += i + 1 < items_.size() ? ",\n" : "\n";
      }
      out += pad + "]";
      return;
    case Kind::kObject:
      if (members_.empty()) {
        out += "{}";
        return;
      }
      out += "{\n";
      for (size_t i = 0; i < members_.size(); ++i) {
        out += inner;
        quote(out, members_[i].first);
        out += ": ";
        members_[i].second.formatInto(out, indent + 1);
        out += i + 1 < members_.size() ? ",\n" : "\n";
      }
      out += pad + "}";
      return;
  }
}

}  // namespace capnet::compiler

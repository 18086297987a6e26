#include "common/audit.h"

#include <cstdio>
#include <mutex>

namespace capnet {
namespace {

std::mutex gSinkMutex;
AuditSink gSink;

bool needsQuoting(std::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v) {
    if (c <= 0x20 || c == '"' || c == '\\' || c == '=' || c >= 0x7f) return true;
  }
  return false;
}

void appendValue(std::string& out, std::string_view v) {
  if (!needsQuoting(v)) {
    out.append(v);
    return;
  }
  static const char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (unsigned char c : v) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      out.append("\\x");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

void emit(const std::string& line) {
  std::lock_guard<std::mutex> lock(gSinkMutex);
  if (gSink) {
    gSink(line);
    return;
  }
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace

std::string formatAudit(std::string_view component, std::string_view verb,
                        std::initializer_list<AuditField> fields) {
  std::string out;
  out.append(component);
  out.append(": ");
  out.append(verb);
  for (const auto& [key, value] : fields) {
    out.push_back(' ');
    out.append(key);
    out.push_back('=');
    appendValue(out, value);
  }
  return out;
}

void setAuditSink(AuditSink sink) {
  std::lock_guard<std::mutex> lock(gSinkMutex);
  gSink = std::move(sink);
}

void audit(std::string_view component, std::string_view verb,
           std::initializer_list<AuditField> fields) {
  emit(formatAudit(component, verb, fields));
}

void auditRaw(std::string_view line) { emit(std::string(line)); }

}  // namespace capnet

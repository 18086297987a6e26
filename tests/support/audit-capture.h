// The audit trail captured for a test's checks: every line the code under test emits while the
// capture lives (common/audit.h), then the default sink again.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/audit.h"

namespace capnet::testing {

class AuditCapture {
 public:
  std::vector<std::string> lines;

  AuditCapture() { setAuditSink([this](const std::string& l) { lines.push_back(l); }); }
  ~AuditCapture() { setAuditSink({}); }
  AuditCapture(const AuditCapture&) = delete;
  AuditCapture& operator=(const AuditCapture&) = delete;

  // Whether a line starts with `prefix` (a whole line counts too).
  bool has(const std::string& prefix) const { return count(prefix) > 0; }
  size_t count(const std::string& prefix) const {
    size_t n = 0;
    for (const auto& l : lines) n += l.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
  }
};

}  // namespace capnet::testing

// Audit lines: one per security decision, in the stable form `component: verb key=value ...`.
// They go to stdout (the guest console), line-buffered and flushed, so the QEMU harness can use
// them as markers. Values that contain spaces, quotes or control characters are quoted and
// escaped, so one line is always one record.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace capnet {

using AuditField = std::pair<std::string_view, std::string_view>;

// Formats one audit line without the trailing newline.
std::string formatAudit(std::string_view component, std::string_view verb,
                        std::initializer_list<AuditField> fields);

// Where audit lines go; tests install a capturing sink.
using AuditSink = std::function<void(const std::string& line)>;
void setAuditSink(AuditSink sink);   // empty sink restores stdout.

void audit(std::string_view component, std::string_view verb,
           std::initializer_list<AuditField> fields = {});

// Prints a line verbatim (for the few exact markers the contract fixes, e.g. `net: devnet off deny`).
void auditRaw(std::string_view line);

}  // namespace capnet

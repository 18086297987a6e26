// Audit lines: one per security decision, in the stable form `component: verb key=value ...`.
// They go to stdout (the guest console), line-buffered and flushed, so the QEMU harness can use
// them as markers. Values that contain spaces, quotes or control characters are quoted and
// escaped, so one line is always one record.
#pragma once

#include <cstdint>
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

// A refusal caused by a peer, rate-limited per (component, uid) so one flooding uid cannot drown
// the trail or fill the console: a burst of kDenialBurst lines, then kDenialsPerSecond. What is
// suppressed is counted and reported as `<component>: suppressed uid=<uid> count=<n>` before the
// next line of that uid that gets through. Returns whether the line was printed.
inline constexpr unsigned kDenialBurst = 20;
inline constexpr unsigned kDenialsPerSecond = 5;
bool auditDenial(std::string_view component, uint32_t uid, std::string_view verb,
                 std::initializer_list<AuditField> fields = {});
// The same, keyed by another name for the peer (`who` is printed in the suppressed line as is,
// e.g. "principal=app").
bool auditDenialFor(std::string_view component, std::string_view who, std::string_view verb,
                    std::initializer_list<AuditField> fields = {});
// The clock the rate limit uses (milliseconds, monotonic); tests install a fake one. Empty
// restores the steady clock.
void setAuditClock(std::function<int64_t()> nowMs);

// Daemons call this once at start: audit lines are then written by a background thread from a
// bounded queue, so a slow console never blocks the event loop. A full queue drops lines and
// counts them (`audit: dropped count=<n>` once there is room). Lines are flushed at exit.
void startAsyncAudit();
// Writes every queued line, stops the writer thread and goes back to writing directly. Runs at
// exit by itself.
void stopAsyncAudit();

}  // namespace capnet

#include "common/audit.h"

#include <kj/encoding.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

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
  out.push_back('"');
  for (unsigned char c : v) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      out.append("\\x");
      out.append(kj::encodeHex(kj::arrayPtr(&c, 1)).cStr());
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

void writeLine(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// The background writer of startAsyncAudit(). Never destroyed (it may be used until exit); drained
// by an atexit handler.
class AsyncWriter {
 public:
  static constexpr size_t kMaxQueued = 4096;
  AsyncWriter() : thread_([this]() { run(); }) {}
  void push(std::string line) {
    {
      std::lock_guard<std::mutex> lock(m_);
      if (q_.size() >= kMaxQueued) {
        ++dropped_;
        return;
      }
      if (dropped_ != 0) {
        q_.push_back("audit: dropped count=" + std::to_string(dropped_));
        dropped_ = 0;
      }
      q_.push_back(std::move(line));
    }
    cv_.notify_one();
  }
  void drain() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      cv_.wait(lock, [this]() { return stop_ || !q_.empty(); });
      while (!q_.empty()) {
        std::string line = std::move(q_.front());
        q_.pop_front();
        lock.unlock();
        writeLine(line);   // may block on a slow console: only this thread waits.
        lock.lock();
      }
      if (stop_) return;
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::string> q_;
  size_t dropped_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

AsyncWriter* gAsync = nullptr;

void emit(const std::string& line) {
  std::lock_guard<std::mutex> lock(gSinkMutex);
  if (gSink) {
    gSink(line);
    return;
  }
  if (gAsync != nullptr) {
    gAsync->push(line);
    return;
  }
  writeLine(line);
}

// ---- per-uid rate limit of denials --------------------------------------------------------------

struct Bucket {
  double tokens = kDenialBurst;
  int64_t lastMs = 0;
  uint64_t suppressed = 0;
};
std::mutex gRateMutex;
std::map<std::pair<std::string, std::string>, Bucket> gBuckets;
std::function<int64_t()> gClock;
constexpr size_t kMaxBuckets = 4096;

int64_t nowMs() {
  if (gClock) return gClock();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
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
  {
    std::lock_guard<std::mutex> lock(gSinkMutex);
    gSink = std::move(sink);
  }
  // A new sink is a new test: it starts with every rate-limit bucket full.
  std::lock_guard<std::mutex> lock(gRateMutex);
  gBuckets.clear();
}

void audit(std::string_view component, std::string_view verb,
           std::initializer_list<AuditField> fields) {
  emit(formatAudit(component, verb, fields));
}

void auditRaw(std::string_view line) { emit(std::string(line)); }

void setAuditClock(std::function<int64_t()> clock) {
  std::lock_guard<std::mutex> lock(gRateMutex);
  gClock = std::move(clock);
  gBuckets.clear();
}

bool auditDenial(std::string_view component, uint32_t uid, std::string_view verb,
                 std::initializer_list<AuditField> fields) {
  return auditDenialFor(component, "uid=" + std::to_string(uid), verb, fields);
}

bool auditDenialFor(std::string_view component, std::string_view who, std::string_view verb,
                    std::initializer_list<AuditField> fields) {
  uint64_t suppressed = 0;
  {
    std::lock_guard<std::mutex> lock(gRateMutex);
    const int64_t now = nowMs();
    if (gBuckets.size() >= kMaxBuckets) {
      // Forget full buckets (uids that have been quiet); they start full again anyway.
      for (auto it = gBuckets.begin(); it != gBuckets.end();) {
        bool idle = it->second.suppressed == 0 &&
                    it->second.tokens + (now - it->second.lastMs) * kDenialsPerSecond / 1000.0 >= kDenialBurst;
        it = idle ? gBuckets.erase(it) : std::next(it);
      }
    }
    // One bucket per line kind too: a flood of one kind (connect denials) does not hide another
    // (the connection being cut).
    auto [it, fresh] = gBuckets.try_emplace({std::string(component) + " " + std::string(verb), std::string(who)});
    Bucket& b = it->second;
    if (fresh) b.lastMs = now;
    b.tokens = std::min<double>(kDenialBurst, b.tokens + (now - b.lastMs) * kDenialsPerSecond / 1000.0);
    b.lastMs = now;
    if (b.tokens < 1.0) {
      ++b.suppressed;
      return false;
    }
    b.tokens -= 1.0;
    suppressed = b.suppressed;
    b.suppressed = 0;
  }
  if (suppressed != 0) {
    emit(formatAudit(component, "suppressed", {{"what", verb}}) + " " + std::string(who) + " count=" +
         std::to_string(suppressed));
  }
  audit(component, verb, fields);
  return true;
}

void startAsyncAudit() {
  std::lock_guard<std::mutex> lock(gSinkMutex);
  if (gAsync != nullptr) return;
  gAsync = new AsyncWriter();   // drained and freed by stopAsyncAudit (at the latest at exit).
  static bool registered = false;
  if (!registered) {
    registered = true;
    std::atexit(stopAsyncAudit);
  }
}

void stopAsyncAudit() {
  AsyncWriter* w = nullptr;
  {
    std::lock_guard<std::mutex> lock(gSinkMutex);
    w = gAsync;
    gAsync = nullptr;   // later lines (from other atexit handlers) are written directly.
  }
  if (w != nullptr) {
    w->drain();
    delete w;
  }
}

}  // namespace capnet

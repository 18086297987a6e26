// Time is injected so tests are deterministic: daemons take a Clock&, tests pass a FakeClock.
#pragma once

#include <cstdint>

namespace capnet {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock milliseconds since the Unix epoch (certificate validity, grant expiry).
  virtual int64_t nowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t nowMs() const override;
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t startMs) : now_(startMs) {}
  int64_t nowMs() const override { return now_; }
  void set(int64_t ms) { now_ = ms; }
  void advance(int64_t ms) { now_ += ms; }

 private:
  int64_t now_;
};

}  // namespace capnet

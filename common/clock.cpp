#include "common/clock.h"

#include <ctime>

namespace capnet {

int64_t SystemClock::nowMs() const {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace capnet

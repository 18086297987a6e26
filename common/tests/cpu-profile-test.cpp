// The guest's sampling profiler (common/cpu-profile.h): it records nothing while off, samples the
// process's own code while it burns CPU, and prints module+offset lines that name this binary.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <kj/async-io.h>

#include "common/cpu-profile.h"
#include "common/file.h"
#include "tests/support/temp-dir.h"

namespace {

// Burns about `ms` of CPU in this binary's own code.
[[gnu::noinline]] uint64_t burn(int ms) {
  volatile uint64_t x = 1;
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 10000; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
  }
  return x;
}

// Everything the profiler printed to stdout while `body` ran.
template <typename F>
std::string capturedStdout(const std::string& file, F&& body) {
  std::fflush(stdout);
  int saved = ::dup(1);
  int fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  ::dup2(fd, 1);
  ::close(fd);
  body();
  std::fflush(stdout);
  ::dup2(saved, 1);
  ::close(saved);
  auto text = capnet::readFileBounded(file, 1 << 20);
  return text ? text.value() : std::string();
}

}  // namespace

TEST_CASE("the CPU profiler samples only between two SIGUSR2s and names the module") {
  capnet::captureProfileSignals();
  auto io = kj::setupAsyncIo();
  auto serving = capnet::serveCpuProfile(io.unixEventPort, "test").eagerlyEvaluate(nullptr);
  auto turn = [&]() { io.provider->getTimer().afterDelay(20 * kj::MILLISECONDS).wait(io.waitScope); };
  capnet::testing::TempDir dir;
  std::string out = capturedStdout(dir.path + "/profile", [&]() {
    burn(300);   // while off: not sampled
    ::kill(::getpid(), SIGUSR2);   // on, then at once off: an idle window
    turn();
    ::kill(::getpid(), SIGUSR2);
    turn();
    ::kill(::getpid(), SIGUSR2);   // on, 400 ms of CPU, off
    turn();
    burn(400);
    ::kill(::getpid(), SIGUSR2);
    turn();
  });
  INFO(out);
  const std::string tag = "test: cpu-profile samples=";
  auto first = out.find(tag);
  REQUIRE(first != std::string::npos);
  auto second = out.find(tag, first + 1);
  REQUIRE(second != std::string::npos);
  // The idle window saw (almost) nothing: the 300 ms burnt before it were not sampled.
  CHECK(std::strtol(out.c_str() + first + tag.size(), nullptr, 10) <= 3);
  // 400 ms of CPU at the kernel's tick rate (100-1000 Hz): at least 40 samples.
  CHECK(std::strtol(out.c_str() + second + tag.size(), nullptr, 10) >= 20);
  CHECK(out.find("test: cpu-profile pc module=cpu-profile-test offset=0x", second) != std::string::npos);
}

// capd as the capd fuzz targets (broker, trust-manager) run it: the real Capd over a netd that
// accepts everything at once, a fixed clock (2026-06-01: the test PKI is valid), a config and a
// trust store in a private directory. The audit trail is silenced unless FUZZ_AUDIT=1 (to see how
// far an input gets).
#pragma once

#include <kj/async-io.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "capd/broker.h"
#include "tests/support/instant-netd.h"
#include "common/audit.h"

namespace capnet::fuzz {

using capnet::testing::InstantNetd;

struct CapdWorld {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  FakeClock clock{1780272000000LL};
  InstantNetd netd;
  std::string dir;
  kj::Own<Capd> capd;

  // `shippedRoot`: a PEM file copied into pkg://trust/ (empty: no shipped root).
  CapdWorld(const std::string& prefix, const std::string& configJson, const std::string& shippedRoot = "") {
    std::string pattern = "/tmp/" + prefix + "-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    dir = ::mkdtemp(buf.data()) != nullptr ? buf.data() : "/tmp";
    std::filesystem::create_directories(dir + "/state/trust/installed");
    std::filesystem::create_directories(dir + "/pkg/trust");
    std::error_code ignored;
    if (!shippedRoot.empty()) std::filesystem::copy_file(shippedRoot, dir + "/pkg/trust/root.pem", ignored);
    std::ofstream(dir + "/network.json") << configJson;
    capd = kj::heap<Capd>(clock, netd, ConfigSources{dir + "/network.json", ""});
    capd->setTrustRoots(Roots{dir + "/pkg", dir + "/state"});
    capd->start();
  }

  // Empties state:/trust/installed/, so that an install in one input never changes the next one.
  void resetInstalled() {
    std::error_code ignored;
    for (const auto& e : std::filesystem::directory_iterator(dir + "/state/trust/installed", ignored)) {
      std::filesystem::remove_all(e.path(), ignored);
    }
  }
};

}  // namespace capnet::fuzz

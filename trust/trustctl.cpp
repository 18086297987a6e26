// trustctl: manage the trust store offline (users provisioning a state disk, CI).
//
//   trustctl [--state DIR] [--pkg DIR] list
//   trustctl [--state DIR] add FILE.pem
//   trustctl [--state DIR] rm FINGERPRINT
//
// DIR defaults to the guest's /state and /pkg. Exit: 0 done, 1 refused, 2 usage.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "trust/trust-store.h"

int main(int argc, char** argv) {
  capnet::Roots roots;
  int i = 1;
  for (; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--state") roots.state = argv[i + 1];
    else if (a == "--pkg") roots.pkg = argv[i + 1];
    else break;
  }
  if (i >= argc) {
    std::fprintf(stderr, "usage: trustctl [--state DIR] [--pkg DIR] list | add FILE.pem | rm FINGERPRINT\n");
    return 2;
  }
  std::string cmd = argv[i];
  capnet::TrustStore store(roots);
  if (cmd == "list" && i + 1 == argc) {
    std::vector<std::string> problems;
    for (const auto& r : store.list(&problems)) {
      std::printf("%s %-5s %s notAfter=%s\n", capnet::hexFingerprint(r.sha256).c_str(), r.origin.c_str(), r.subject.c_str(),
                  r.notAfter.c_str());
    }
    for (const auto& p : problems) std::printf("skipped: %s\n", p.c_str());
    return 0;
  }
  if (cmd == "add" && i + 2 == argc) {
    std::ifstream in(argv[i + 1], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "trustctl: cannot read %s\n", argv[i + 1]);
      return 1;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::string pem = ss.str();
    auto r = store.add(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pem.data()), pem.size()));
    if (!r.ok()) {
      std::printf("refused: %s\n", r.message().c_str());
      return 1;
    }
    std::printf("added %s %s\n", capnet::hexFingerprint(r->sha256).c_str(), r->subject.c_str());
    return 0;
  }
  if (cmd == "rm" && i + 2 == argc) {
    auto r = store.remove(argv[i + 1]);
    if (!r.ok()) {
      std::printf("refused: %s\n", r.message().c_str());
      return 1;
    }
    std::printf("removed %s\n", argv[i + 1]);
    return 0;
  }
  std::fprintf(stderr, "usage: trustctl [--state DIR] [--pkg DIR] list | add FILE.pem | rm FINGERPRINT\n");
  return 2;
}

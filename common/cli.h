// What every capnet program does with its command line before its own options: `--help` (or -h)
// prints the usage on stdout and exits 0, `--version` prints "NAME VERSION" and exits 0; a usage
// error goes to stderr with exit 2 (usageError). And the one number parser the mains share.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace capnet::cli {

inline constexpr const char* kVersion = "0.1";

// Handles --help/-h and --version anywhere on the line; returns -1 when neither was given, else the
// exit status the program should return.
inline int standardFlags(int argc, char** argv, const char* name, const char* usage) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(usage, stdout);
      return 0;
    }
    if (std::strcmp(argv[i], "--version") == 0) {
      std::printf("%s %s\n", name, kVersion);
      return 0;
    }
  }
  return -1;
}

// A usage error: the reason and the usage on stderr; the exit status 2.
inline int usageError(const char* name, const std::string& why, const char* usage) {
  std::fprintf(stderr, "%s: %s\n%s", name, why.c_str(), usage);
  return 2;
}

// A decimal number in 0..max, all of `s` (no sign, no trailing text).
inline bool parseUint(const char* s, unsigned long long max, unsigned long long& out) {
  if (s == nullptr || *s < '0' || *s > '9') return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoull(s, &end, 10);
  return errno == 0 && *end == '\0' && out <= max;
}

}  // namespace capnet::cli

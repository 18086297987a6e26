// Reading a whole file: the one implementation every component uses (config, trust store, fixture
// files, trustctl, selftest). Opened without following a final symlink (O_NOFOLLOW), only a
// regular file, never more than `maxBytes`: a file under an attacker's influence can neither
// redirect the read nor make the reader allocate without bound.
#pragma once

#include <cstddef>
#include <string>

#include "common/result.h"

namespace capnet {

enum class FileError {
  kUnreadable,   // cannot be opened or read (the message carries strerror)
  kNotRegular,   // a directory, a device, a FIFO, a symlink
  kTooLarge,     // more than maxBytes
};

// The message names the path and the reason: "<path>: No such file or directory",
// "<path>: not a regular file", "<path>: larger than N bytes".
Result<std::string, FileError> readFileBounded(const std::string& path, size_t maxBytes);

}  // namespace capnet

#include "common/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <kj/io.h>

namespace capnet {

Result<std::string, FileError> readFileBounded(const std::string& path, size_t maxBytes) {
  using R = Result<std::string, FileError>;
  // O_NONBLOCK: a FIFO must not hang the open; O_NOCTTY: a terminal never becomes ours.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ELOOP) return R(Error<FileError>{FileError::kNotRegular, path + ": not a regular file (a symlink)"});
    return R(Error<FileError>{FileError::kUnreadable, path + ": " + std::strerror(errno)});
  }
  kj::AutoCloseFd owned(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return R(Error<FileError>{FileError::kNotRegular, path + ": not a regular file"});
  }
  const std::string tooLarge = path + ": larger than " + std::to_string(maxBytes) + " bytes";
  if (static_cast<uint64_t>(st.st_size) > maxBytes) return R(Error<FileError>{FileError::kTooLarge, tooLarge});
  std::string text;
  text.reserve(static_cast<size_t>(st.st_size));
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return R(Error<FileError>{FileError::kUnreadable, path + ": " + std::strerror(errno)});
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > maxBytes) return R(Error<FileError>{FileError::kTooLarge, tooLarge});   // grew while read
  }
  return R(std::move(text));
}

}  // namespace capnet

// A temporary directory for a test, removed with everything in it when the test ends. The one
// copy every test uses (capd, netd, fetchd, trust, virtio, common and the cross-component tests).
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace capnet::testing {

class TempDir {
 public:
  // /tmp/<prefix>-XXXXXX, mode 0755 (other test uids must reach sockets inside).
  explicit TempDir(const std::string& prefix = "capnet-test") {
    std::string pattern = "/tmp/" + prefix + "-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) != nullptr) {
      path = buf.data();
      ::chmod(path.c_str(), 0755);
    }
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Writes `text` to path/<name> (creating parent directories); returns the file's path.
  std::string write(const std::string& name, const std::string& text) const {
    std::string file = path + "/" + name;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(file).parent_path(), ec);
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }
  // Creates path/<name> and its parents; returns its path.
  std::string dir(const std::string& name) const {
    std::error_code ec;
    std::filesystem::create_directories(path + "/" + name, ec);
    return path + "/" + name;
  }

  std::string path;   // empty if mkdtemp failed
};

}  // namespace capnet::testing

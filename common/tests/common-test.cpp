#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/audit.h"
#include "common/file.h"
#include "common/paths.h"
#include "common/peer.h"
#include "tests/support/temp-dir.h"

using namespace capnet;

TEST_CASE("audit lines have the stable component: verb key=value form") {
  CHECK(formatAudit("capd", "deny", {{"principal", "selftest"}, {"reason", "devnet-off"}}) ==
        "capd: deny principal=selftest reason=devnet-off");
}

TEST_CASE("audit values with spaces, quotes or control bytes are quoted so a line stays one record") {
  CHECK(formatAudit("netd", "deny", {{"detail", "a b"}}) == "netd: deny detail=\"a b\"");
  CHECK(formatAudit("netd", "deny", {{"detail", "x\ny"}}) == "netd: deny detail=\"x\\x0ay\"");
  CHECK(formatAudit("netd", "deny", {{"detail", "k=v"}}) == "netd: deny detail=\"k=v\"");
  CHECK(formatAudit("netd", "deny", {{"detail", ""}}) == "netd: deny detail=\"\"");
}

TEST_CASE("audit sink captures lines for tests") {
  std::vector<std::string> lines;
  setAuditSink([&](const std::string& l) { lines.push_back(l); });
  audit("capd", "mint", {{"principal", "app"}});
  auditRaw("net: devnet off deny");
  setAuditSink({});
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "capd: mint principal=app");
  CHECK(lines[1] == "net: devnet off deny");
}

TEST_CASE("pkg:// and state:/ resolve under their roots and refuse to escape them") {
  Roots r{"/p", "/s"};
  CHECK(r.resolve("pkg://trust/a.pem") == "/p/trust/a.pem");
  CHECK(r.resolve("state:/trust/installed/") == "/s/trust/installed/");
  CHECK_FALSE(r.resolve("pkg://../etc/passwd").has_value());
  CHECK_FALSE(r.resolve("state:/trust/../../x").has_value());
  CHECK_FALSE(r.resolve("file:///etc/passwd").has_value());
}

TEST_CASE("peer credentials come from the kernel for a real Unix socket pair") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  auto cred = peerCredentials(sv[0]);
  REQUIRE(cred.has_value());
  CHECK(cred->uid == getuid());
  CHECK(cred->pid == getpid());
  close(sv[0]);
  close(sv[1]);
  CHECK_FALSE(peerCredentials(-1).has_value());
}

TEST_CASE("denials are rate-limited per uid: a burst, then a steady rate, and the suppressed count is reported") {
  std::vector<std::string> lines;
  int64_t now = 1000;
  setAuditSink([&](const std::string& l) { lines.push_back(l); });
  setAuditClock([&]() { return now; });
  for (int i = 0; i < 100; ++i) auditDenial("netd", 1101, "connect deny", {{"reason", "no-cap"}, {"uid", "1101"}});
  CHECK(lines.size() == kDenialBurst);
  // Another kind of line for the same uid has its own budget (the flood does not hide it).
  CHECK(auditDenial("netd", 1101, "close-connection", {{"reason", "peer-not-reading"}, {"uid", "1101"}}));
  lines.pop_back();
  // Another uid is not silenced by the first one's flood.
  CHECK(auditDenial("netd", 1100, "connect deny", {{"reason", "no-cap"}, {"uid", "1100"}}));
  lines.clear();
  now += 1000;   // kDenialsPerSecond tokens come back.
  for (int i = 0; i < 100; ++i) auditDenial("netd", 1101, "connect deny", {{"reason", "no-cap"}, {"uid", "1101"}});
  REQUIRE(lines.size() == 1 + kDenialsPerSecond);
  CHECK(lines[0] == "netd: suppressed what=\"connect deny\" uid=1101 count=80");
  CHECK(lines[1] == "netd: connect deny reason=no-cap uid=1101");
  setAuditClock({});
  setAuditSink({});
}

TEST_CASE("the async audit writer keeps every line and their order, and drains when stopped") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::fflush(stdout);   // nothing of ours buffered twice.
  pid_t child = ::fork();
  if (child == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    startAsyncAudit();
    for (int i = 0; i < 500; ++i) audit("test", "line", {{"n", std::to_string(i)}});
    stopAsyncAudit();
    ::_exit(0);   // nothing else of this (forked test) process may run.
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  size_t at = 0;
  for (int i = 0; i < 500; ++i) {
    std::string want = "test: line n=" + std::to_string(i) + "\n";
    auto found = out.find(want, at);
    REQUIRE_MESSAGE(found == at, "line " << i << " missing or out of order");
    at = found + want.size();
  }
  CHECK(at == out.size());
}

TEST_CASE("readFileBounded reads a whole regular file and refuses a symlink, a FIFO, a directory and an oversized file") {
  capnet::testing::TempDir dir("common-test");
  const std::string text(1000, 'x');
  std::string file = dir.write("plain", text);
  auto ok = capnet::readFileBounded(file, 1000);
  REQUIRE(ok.ok());
  CHECK(ok.value() == text);
  CHECK(capnet::readFileBounded(file, 999).code() == capnet::FileError::kTooLarge);
  CHECK(capnet::readFileBounded(dir.path + "/absent", 10).code() == capnet::FileError::kUnreadable);
  CHECK(capnet::readFileBounded(dir.path + "/absent", 10).message().find("No such file") != std::string::npos);
  CHECK(capnet::readFileBounded(dir.path, 10).code() == capnet::FileError::kNotRegular);
  REQUIRE(::symlink(file.c_str(), (dir.path + "/link").c_str()) == 0);
  CHECK(capnet::readFileBounded(dir.path + "/link", 4096).code() == capnet::FileError::kNotRegular);
  // A FIFO with no writer would block a plain open() forever.
  REQUIRE(::mkfifo((dir.path + "/fifo").c_str(), 0600) == 0);
  CHECK(capnet::readFileBounded(dir.path + "/fifo", 4096).code() == capnet::FileError::kNotRegular);
  CHECK(capnet::readFileBounded("/dev/zero", 4096).code() == capnet::FileError::kNotRegular);   // endless
}

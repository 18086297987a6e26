#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/audit.h"
#include "common/paths.h"
#include "common/peer.h"

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

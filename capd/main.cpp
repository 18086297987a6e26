// capd: the capability broker. main only parses arguments, binds its socket, drops privileges and
// runs the library (capd/broker.h); `--check` and `--explain` are offline tools for policy authors.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <variant>

#include <capnp/compat/json.h>
#include <capnp/message.h>
#include <kj/async-unix.h>

#include "capd/broker.h"
#include "capd/netd-link.h"
#include "common/cli.h"
#include "common/audit.h"
#include "common/clock.h"
#include "common/privileges.h"
#include "common/rpc-server.h"

namespace {

constexpr const char* kUsage =
    "usage:\n"
    "  capd --config FILE [--state-config FILE] --socket PATH --netd-control PATH [--uid N --gid N]\n"
    "  capd --check FILE\n"
    "  capd --explain [--json] PRINCIPAL URL [--config FILE] [--state-config FILE]\n"
    "exit codes: 0 ok/allowed, 1 runtime failure or denied (--explain), 2 invalid config or usage\n";

int usage(const char* why) {
  std::fprintf(stderr, "capd: %s\n%s", why, kUsage);
  return 2;
}


int check(const char* path) {
  auto loaded = capnet::loadConfigFile(path);
  if (auto* problems = std::get_if<capnet::ConfigProblems>(&loaded)) {
    for (const auto& p : problems->problems) std::printf("%s\n", p.c_str());
    return 2;
  }
  auto policy = capnet::Policy::fromConfig(std::get<std::shared_ptr<const capnet::ConfigDocument>>(loaded), path);
  std::printf("%s\n", policy->summary().c_str());
  return 0;
}

// `--explain --json`: one JSON object for policy tooling: decision, reason, rules, and url
// (scheme, host, port, target) whenever the URL parsed, whatever the decision.
void printJson(const capnet::PolicyDecision& d, const std::optional<capnet::Url>& url, const std::vector<std::string>& problems) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<capnp::JsonValue>();
  auto fields = root.initObject(url ? 5 : 4);
  fields[0].setName("decision");
  fields[0].initValue().setString(d.allowed ? "allow" : "deny");
  fields[1].setName("reason");
  fields[1].initValue().setString(d.reason);
  fields[2].setName("rules");
  auto rules = fields[2].initValue().initArray(static_cast<unsigned>(d.rules.size()));
  for (unsigned i = 0; i < rules.size(); ++i) rules[i].setString(d.rules[i]);
  fields[3].setName("problems");
  auto ps = fields[3].initValue().initArray(static_cast<unsigned>(problems.size()));
  for (unsigned i = 0; i < ps.size(); ++i) ps[i].setString(problems[i]);
  if (url) {
    fields[4].setName("url");
    auto u = fields[4].initValue().initObject(4);
    u[0].setName("scheme");
    u[0].initValue().setString(url->scheme);
    u[1].setName("host");
    u[1].initValue().setString(url->host);
    u[2].setName("port");
    u[2].initValue().setNumber(url->port);
    u[3].setName("target");
    u[3].initValue().setString(url->target);
  }
  capnp::JsonCodec codec;
  std::printf("%s\n", codec.encodeRaw(root.asReader()).cStr());
}

int explain(const std::string& principal, const std::string& url, const capnet::ConfigSources& sources, bool json) {
  auto policy = capnet::loadPolicy(sources);
  capnet::SystemClock clock;
  const capnet::PrincipalInfo* info = policy->principalByName(principal);
  capnet::PolicyDecision d;
  std::optional<capnet::Url> parsed;
  if (info == nullptr) {
    d.reason = "unknown-principal (\"" + principal + "\" is not in network.principals)";
    d.rules.push_back("principal " + principal + " is in network.principals: deny");
    if (auto u = capnet::parseUrl(url, capnet::UrlSchemes::kScopes); u.ok()) parsed = u.value();
  } else {
    d = capnet::explainUrl(*policy, info->uid, url, clock.nowMs(), &parsed);
  }
  if (json) {
    printJson(d, parsed, policy->problems());
    return d.allowed ? 0 : 1;
  }
  std::printf("policy: %s\n", policy->summary().c_str());
  for (const auto& p : policy->problems()) std::printf("  problem: %s\n", p.c_str());
  for (const auto& r : d.rules) std::printf("  rule: %s\n", r.c_str());
  std::printf("decision: %s (%s)\n", d.allowed ? "allow" : "deny", d.reason.c_str());
  return d.allowed ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (int rc = capnet::cli::standardFlags(argc, argv, "capd", kUsage); rc >= 0) return rc;
  capnet::ConfigSources sources;
  std::string socketPath, netdControl, checkPath, explainPrincipal, explainUrl;
  unsigned long long uid = 0, gid = 0;
  bool dropTo = false, haveGid = false, explainJson = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    } else if (a == "--config" && (v = next())) {
      sources.imagePath = v;
    } else if (a == "--state-config" && (v = next())) {
      sources.statePath = v;
    } else if (a == "--socket" && (v = next())) {
      socketPath = v;
    } else if (a == "--netd-control" && (v = next())) {
      netdControl = v;
    } else if (a == "--check" && (v = next())) {
      checkPath = v;
    } else if (a == "--explain" && i + 2 < argc) {
      if (std::string(argv[i + 1]) == "--json") {
        explainJson = true;
        ++i;
        if (i + 2 >= argc) return usage("--explain --json needs PRINCIPAL URL");
      }
      explainPrincipal = argv[++i];
      explainUrl = argv[++i];
    } else if (a == "--uid" && (v = next())) {
      if (!capnet::cli::parseUint(v, 4294967294ul, uid)) return usage("--uid: not a uid");
      dropTo = true;
    } else if (a == "--gid" && (v = next())) {
      if (!capnet::cli::parseUint(v, 4294967294ul, gid)) return usage("--gid: not a gid");
      haveGid = true;
    } else {
      return usage(("unknown or incomplete argument: " + a).c_str());
    }
  }
  if (!checkPath.empty()) return check(checkPath.c_str());
  if (!explainPrincipal.empty()) {
    if (sources.imagePath.empty()) sources.imagePath = "/pkg/config/network.json";
    return explain(explainPrincipal, explainUrl, sources, explainJson);
  }
  if (sources.imagePath.empty() || socketPath.empty() || netdControl.empty()) {
    return usage("--config, --socket and --netd-control are required");
  }
  if (dropTo && !haveGid) gid = uid;

  kj::UnixEventPort::captureSignal(SIGHUP);
  ::signal(SIGPIPE, SIG_IGN);
  capnet::startAsyncAudit();   // a slow console never blocks the event loop.
  auto io = kj::setupAsyncIo();
  capnet::SystemClock clock;
  capnet::Capd* capdPtr = nullptr;
  capnet::UnixNetdLink netd(*io.provider, io.provider->getTimer(), netdControl, [&capdPtr]() {
    return capdPtr ? capdPtr->resync() : kj::Promise<void>(kj::READY_NOW);
  });
  capnet::Capd capd(clock, netd, sources);
  capdPtr = &capd;
  capnet::UnixRpcServer server(*io.provider, "capd", capnet::RpcLimits{},
                               [&capd](const capnet::PeerCredentials& peer) { return capd.connectionFor(peer.uid); });
  capd.setPolicyObserver([&server](const capnet::Policy& p) {
    server.setLimits(capnet::withPeerCaps(capnet::RpcLimits{}, p.netLimits().connectionsPerUid,
                                           p.netLimits().firstCallDeadlineMs));
  });
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { server.bind(socketPath, 0666).wait(io.waitScope); })) {
    std::fprintf(stderr, "capd: cannot bind %s: %s\n", socketPath.c_str(), e->getDescription().cStr());
    return 1;
  }
  if (dropTo) {
    auto dropped = capnet::dropPrivileges(static_cast<uid_t>(uid), static_cast<gid_t>(gid));
    if (!dropped.ok()) {
      std::fprintf(stderr, "capd: %s\n", dropped.message().c_str());
      return 1;
    }
  }
  capd.start();
  capnet::audit("capd", "ready", {{"socket", socketPath}, {"netd-control", netdControl}});

  struct Log final : kj::TaskSet::ErrorHandler {
    void taskFailed(kj::Exception&& e) override {
      capnet::audit("capd", "task-error", {{"detail", e.getDescription().cStr()}});
    }
  } log;
  kj::TaskSet tasks(log);
  tasks.add(netd.run());
  std::function<kj::Promise<void>()> onHup = [&]() -> kj::Promise<void> {
    return io.unixEventPort.onSignal(SIGHUP).then([&](siginfo_t) {
      capnet::audit("capd", "reload-requested", {{"by", "SIGHUP"}});
      return capd.reload().ignoreResult();
    }).then([&]() { return onHup(); });
  };
  tasks.add(onHup());
  // The accept loop runs forever; an error in it is fatal (nothing can reach capd any more).
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { server.run().wait(io.waitScope); })) {
    std::fprintf(stderr, "capd: server stopped: %s\n", e->getDescription().cStr());
    return 1;
  }
  return 0;
}

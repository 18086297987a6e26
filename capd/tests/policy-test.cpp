#include <doctest/doctest.h>

#include <variant>

#include "capd/policy.h"

using namespace capnet;

namespace {

std::shared_ptr<const Policy> policyFrom(const std::string& json) {
  auto r = parseConfig(json);
  if (auto* p = std::get_if<ConfigProblems>(&r)) {
    for (auto& x : p->problems) MESSAGE(x);
    return nullptr;
  }
  return Policy::fromConfig(std::get<std::shared_ptr<const ConfigDocument>>(r), "test");
}

std::string config(bool devnet, const std::string& appCaps) {
  return std::string(R"({"network": {"devnet": {"enabled": )") + (devnet ? "true" : "false") +
         R"(}, "principals": {"app": {"uid": 2000, "capabilities": [)" + appCaps +
         R"(]}, "fetchd": {"uid": 1002, "capabilities": ["net.grant.delegate"]}},
            "hosts": {"devnet.test": "10.0.2.2"}}})";
}

GrantRequest direct(std::string scheme, std::string host, uint16_t port) {
  return GrantRequest{2000, 2000, false, std::move(scheme), std::move(host), port};
}

}  // namespace

TEST_CASE("mint matrix: devnet off/on x capability present/absent x scope in/out") {
  for (bool devnet : {false, true}) {
    for (bool hasCap : {false, true}) {
      for (bool inScope : {false, true}) {
        CAPTURE(devnet);
        CAPTURE(hasCap);
        CAPTURE(inScope);
        auto p = policyFrom(config(devnet, hasCap ? R"("net.tcp.connect", "net.dns.resolve")" : ""));
        REQUIRE(p);
        auto d = p->decideGrant(direct("tcp", inScope ? "devnet.test" : "elsewhere.test", 7), 0);
        CHECK(d.allowed == (devnet && hasCap && inScope));
        if (!devnet) {
          CHECK(d.denial == idl::GrantRefusal::DEVNET_OFF);
        } else if (!hasCap) {
          CHECK(d.denial == idl::GrantRefusal::NO_CAP);
          CHECK(d.reason == "no-cap (app lacks net.tcp.connect)");
        } else if (!inScope) {
          CHECK(d.denial == idl::GrantRefusal::UNKNOWN_HOST);
        } else {
          CHECK(d.address == 0x0a000202u);
          CHECK(d.reason == "allowed");
        }
      }
    }
  }
}

TEST_CASE("a host name needs net.dns.resolve for direct connects but a listed IPv4 literal does not") {
  auto p = policyFrom(config(true, R"("net.tcp.connect")"));
  REQUIRE(p);
  auto byName = p->decideGrant(direct("tcp", "devnet.test", 7), 0);
  CHECK_FALSE(byName.allowed);
  CHECK(byName.reason == "no-cap (app lacks net.dns.resolve)");
  CHECK(p->decideGrant(direct("tcp", "10.0.2.2", 7), 0).allowed);
  auto unlisted = p->decideGrant(direct("tcp", "10.9.9.9", 7), 0);
  CHECK(unlisted.denial == idl::GrantRefusal::UNKNOWN_HOST);
}

TEST_CASE("tls scope needs net.tls.validate on top of net.tcp.connect") {
  auto p = policyFrom(config(true, R"("net.tcp.connect", "net.dns.resolve")"));
  REQUIRE(p);
  auto d = p->decideGrant(direct("tls", "devnet.test", 443), 0);
  CHECK(d.denial == idl::GrantRefusal::NO_CAP);
  CHECK(d.reason == "no-cap (app lacks net.tls.validate)");
}

TEST_CASE("delegated grants need net.grant.delegate on the caller and net.http.devnet on the subject") {
  auto p = policyFrom(config(true, R"("net.http.fetch")"));
  REQUIRE(p);
  GrantRequest viaFetchd{1002, 2000, true, "https", "devnet.test", 443};
  auto d = p->decideGrant(viaFetchd, 0);
  CHECK(d.denial == idl::GrantRefusal::NO_CAP);
  CHECK(d.reason == "no-cap (app lacks net.http.devnet)");

  auto q = policyFrom(config(true, R"("net.http.fetch", "net.http.devnet", "net.tls.validate")"));
  REQUIRE(q);
  CHECK(q->decideGrant(viaFetchd, 0).allowed);
  GrantRequest byApp{2000, 2000, true, "https", "devnet.test", 443};   // the app is no delegate
  CHECK(q->decideGrant(byApp, 0).reason == "no-cap (app lacks net.grant.delegate)");
  GrantRequest directHttps{2000, 2000, false, "https", "devnet.test", 443};
  CHECK(q->decideGrant(directHttps, 0).denial == idl::GrantRefusal::BAD_SCOPE);
  GrantRequest unknownSubject{1002, 4242, true, "https", "devnet.test", 443};
  CHECK(q->decideGrant(unknownSubject, 0).denial == idl::GrantRefusal::UNKNOWN_PRINCIPAL);
}

TEST_CASE("an unknown caller uid holds nothing") {
  auto p = policyFrom(config(true, R"("net.tcp.connect")"));
  REQUIRE(p);
  GrantRequest stranger{4242, 4242, false, "tcp", "10.0.2.2", 7};
  CHECK(p->decideGrant(stranger, 0).denial == idl::GrantRefusal::UNKNOWN_PRINCIPAL);
  CHECK_FALSE(p->holds(4242, "net.tcp.connect"));
}

TEST_CASE("an invalid config yields a policy that denies everything with config-invalid") {
  auto p = Policy::denyAll("broken.json", {"network.hosts[\"x\"]: not an IPv4 address"});
  CHECK_FALSE(p->valid());
  auto d = p->decideGrant(direct("tcp", "10.0.2.2", 7), 0);
  CHECK(d.denial == idl::GrantRefusal::CONFIG_INVALID);
  CHECK_FALSE(p->holds(2000, "net.tcp.connect"));
  CHECK(p->summary().find("denying everything") != std::string::npos);
}

TEST_CASE("bad scopes are refused: port 0, empty or malformed host, unknown scheme") {
  auto p = policyFrom(config(true, R"("net.tcp.connect", "net.dns.resolve")"));
  REQUIRE(p);
  CHECK(p->decideGrant(direct("tcp", "devnet.test", 0), 0).denial == idl::GrantRefusal::BAD_SCOPE);
  CHECK(p->decideGrant(direct("tcp", "", 7), 0).denial == idl::GrantRefusal::BAD_SCOPE);
  CHECK(p->decideGrant(direct("tcp", "a b", 7), 0).denial == idl::GrantRefusal::BAD_SCOPE);
  CHECK(p->decideGrant(direct("gopher", "devnet.test", 7), 0).denial == idl::GrantRefusal::BAD_SCOPE);
}

TEST_CASE("TLS policy travels with the grant: time policy, TLS 1.2 allowance, pins and their expiry") {
  const char* pin1 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  const char* pin2 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
  auto p = policyFrom(std::string(R"({"network": {"devnet": {"enabled": true},
      "principals": {"app": {"uid": 2000, "capabilities": ["net.tcp.connect", "net.tls.validate", "net.dns.resolve"]}},
      "hosts": {"devnet.test": "10.0.2.2", "legacy.test": "10.0.2.4"},
      "tls": {"certTimePolicy": "ignore-validity", "allowTls12": ["legacy.test"],
              "pins": {"devnet.test": {"spkiSha256": [")") + pin1 + "\", \"" + pin2 +
                      R"("], "expires": "2027-01-01"}}}}})");
  REQUIRE(p);
  auto d = p->decideGrant(direct("tls", "devnet.test", 443), 0);
  REQUIRE(d.allowed);
  CHECK(d.tls.timePolicy == TimePolicy::kIgnoreValidity);
  CHECK(d.ignoreValidityWarning);
  CHECK(d.tls.minVersion == MinTlsVersion::kTls13);
  REQUIRE(d.tls.pins.size() == 2);
  CHECK(d.tls.pins[1][0] == 1);
  CHECK(d.tls.pinsExpireAtMs == 1798761600000LL);
  auto legacy = p->decideGrant(direct("tls", "legacy.test", 443), 0);
  CHECK(legacy.tls.minVersion == MinTlsVersion::kTls12);
  CHECK(legacy.tls.pins.empty());
}

TEST_CASE("capability checks for the fixture path are explained") {
  auto p = policyFrom(config(false, R"("net.http.fetch")"));
  REQUIRE(p);
  CHECK(p->decideCapability(2000, "net.http.fetch").allowed);
  auto no = p->decideCapability(1002, "net.http.fetch");
  CHECK_FALSE(no.allowed);
  CHECK(no.reason == "no-cap (fetchd lacks net.http.fetch)");
}

TEST_CASE("an IPv4 literal of a listed host gets that host's pins and TLS floor: spelling cannot dodge policy") {
  const char* pin1 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  const char* pin2 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
  auto p = policyFrom(std::string(R"({"network": {"devnet": {"enabled": true},
      "principals": {"app": {"uid": 2000, "capabilities": ["net.tcp.connect", "net.tls.validate", "net.dns.resolve"]}},
      "hosts": {"devnet.test": "10.0.2.2", "legacy.test": "10.0.2.4", "alias.test": "10.0.2.4",
                "other.test": "10.0.2.5", "twin.test": "10.0.2.5"},
      "tls": {"allowTls12": ["legacy.test"],
              "pins": {"devnet.test": {"spkiSha256": [")") + pin1 + "\", \"" + pin2 + R"("], "expires": "2027-01-01"},
                       "other.test": {"spkiSha256": [")" + pin1 + "\", \"" + pin2 + R"("], "expires": "2027-01-01"},
                       "twin.test": {"spkiSha256": [")" + pin2 + "\", \"" + pin1 + R"("], "expires": "2027-01-01"}}}}})");
  REQUIRE(p);
  auto byName = p->decideGrant(direct("tls", "devnet.test", 443), 0);
  auto byAddress = p->decideGrant(direct("tls", "10.0.2.2", 443), 0);
  REQUIRE(byAddress.allowed);
  CHECK(byAddress.tls.pins == byName.tls.pins);
  CHECK(byAddress.tls.pinsExpireAtMs == byName.tls.pinsExpireAtMs);
  // 10.0.2.4 is legacy.test (TLS 1.2 allowed) and alias.test (not): the stricter floor applies.
  CHECK(p->decideGrant(direct("tls", "legacy.test", 443), 0).tls.minVersion == MinTlsVersion::kTls12);
  CHECK(p->decideGrant(direct("tls", "10.0.2.4", 443), 0).tls.minVersion == MinTlsVersion::kTls13);
  // Two names of one address pinning different sets: the literal is refused, not guessed.
  auto ambiguous = p->decideGrant(direct("tls", "10.0.2.5", 443), 0);
  CHECK_FALSE(ambiguous.allowed);
  CHECK(ambiguous.denial == idl::GrantRefusal::BAD_SCOPE);
}

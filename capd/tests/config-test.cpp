#include <doctest/doctest.h>

#include <string>
#include <variant>

#include "capd/config.h"
#include "common/encoding.h"

using namespace capnet;

namespace {

std::vector<std::string> problemsOf(const std::string& json) {
  auto r = parseConfig(json);
  if (auto* p = std::get_if<ConfigProblems>(&r)) return p->problems;
  return {};
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v) {
    if (x == s) return true;
  }
  return false;
}

std::string withNetwork(const std::string& inner) { return "{\"network\": {" + inner + "}}"; }

}  // namespace

TEST_CASE("the shipped config/network.json is valid and keeps devnet off") {
  auto r = loadConfigFile(std::string(CAPNET_SOURCE_DIR) + "/config/network.json");
  REQUIRE(std::holds_alternative<std::shared_ptr<const ConfigDocument>>(r));
  auto doc = std::get<std::shared_ptr<const ConfigDocument>>(r);
  CHECK_FALSE(doc->root().getNetwork().getDevnet().getEnabled());
  CHECK(doc->root().getNetwork().getHosts().size() == 2);
}

TEST_CASE("an empty object is a valid config that denies everything by default") {
  auto r = parseConfig("{}");
  REQUIRE(std::holds_alternative<std::shared_ptr<const ConfigDocument>>(r));
  auto net = std::get<std::shared_ptr<const ConfigDocument>>(r)->root().getNetwork();
  CHECK_FALSE(net.getDevnet().getEnabled());
  CHECK(net.getPrincipals().size() == 0);
  CHECK(net.getGrants().getLifetimeMs() == 60000);
  CHECK(net.getTls().getCertTimePolicy() == idl::CertTimePolicy::ENFORCE);
}

TEST_CASE("maps, enums with JSON names and defaults decode into the typed config") {
  auto r = parseConfig(withNetwork(
      R"("devnet": {"enabled": true}, "hosts": {"devnet.test": "10.0.2.2"},
         "principals": {"app": {"uid": 1101, "capabilities": ["net.http.fetch"]}},
         "tls": {"certTimePolicy": "ignore-validity", "minVersion": "1.2"}, "http": {"redirects": "none"})"));
  REQUIRE(std::holds_alternative<std::shared_ptr<const ConfigDocument>>(r));
  auto net = std::get<std::shared_ptr<const ConfigDocument>>(r)->root().getNetwork();
  CHECK(net.getDevnet().getEnabled());
  REQUIRE(net.getHosts().size() == 1);
  CHECK(std::string(net.getHosts()[0].getKey().cStr()) == "devnet.test");
  CHECK(std::string(net.getHosts()[0].getValue().cStr()) == "10.0.2.2");
  REQUIRE(net.getPrincipals().size() == 1);
  CHECK(net.getPrincipals()[0].getValue().getUid() == 1101);
  CHECK(net.getTls().getCertTimePolicy() == idl::CertTimePolicy::IGNORE_VALIDITY);
  CHECK(net.getTls().getMinVersion() == idl::TlsVersion::TLS12);
  CHECK(net.getHttp().getRedirects() == idl::RedirectPolicy::NONE);
  CHECK(net.getHttp().getMaxRedirects() == 5);
}

TEST_CASE("each validation error names its JSON path") {
  struct Case {
    const char* json;
    const char* problem;
  } cases[] = {
      {R"("hosts": {"devnet.test": "10.0.2"})", R"(network.hosts["devnet.test"]: not an IPv4 address)"},
      {R"("hosts": {"devnet.test": "10.0.2.256"})", R"(network.hosts["devnet.test"]: not an IPv4 address)"},
      {R"("hosts": {"bad host": "10.0.2.2"})",
       R"(network.hosts["bad host"]: not a host or principal name (letters, digits, '-', '.', '_'))"},
      {R"("principals": {"app": {"uid": 5, "capabilities": ["net.http.fetch", "net.foo"]}})",
       R"(network.principals["app"].capabilities[1]: unknown capability "net.foo")"},
      {R"("principals": {"app": {"uid": 0}})", R"(network.principals["app"].uid: 0 is out of range 1..4294967294)"},
      {R"("principals": {"app": {"capabilities": []}})",
       R"(network.principals["app"].uid: required (a uid from 1 to 4294967294))"},
      {R"("principals": {"a": {"uid": 7}, "b": {"uid": 7}})",
       R"(network.principals["b"].uid: uid 7 is already principal "a")"},
      {R"("principals": {"a": {"uid": 7, "capabilities": ["net.http.fetch", "net.http.fetch"]}})",
       R"(network.principals["a"].capabilities[1]: duplicate capability "net.http.fetch")"},
      {R"("devnet": {"enabled": "yes"})", R"(network.devnet.enabled: expected true or false, found a string)"},
      {R"("devnet": {"enabeld": true})", R"(network.devnet.enabeld: unknown field)"},
      {R"("tls": {"certTimePolicy": "lenient"})",
       R"(network.tls.certTimePolicy: "lenient" is not one of "enforce", "ignore-validity")"},
      {R"("timeouts": {"connectMs": 0})", R"(network.timeouts.connectMs: 0 is out of range 1..600000)"},
      {R"("timeouts": {"connectMs": 1.5})", R"(network.timeouts.connectMs: expected an integer, found 1.500000)"},
      {R"("http": {"maxBodyBytes": -1})", R"(network.http.maxBodyBytes: -1 is out of range 1..1073741824)"},
      {R"("grants": {"lifetimeMs": 10})", R"(network.grants.lifetimeMs: 10 is out of range 1000..86400000)"},
      {R"("hosts": ["devnet.test"])", R"(network.hosts: expected an object, found an array)"},
      {R"("hosts": {"a.test": "10.0.2.2"}, "tls": {"pins": {"a.test": {"spkiSha256": ["AAAA"], "expires": "2027-01-01"}}})",
       R"(network.tls.pins["a.test"].spkiSha256: at least two pins are required (the live key and a backup))"},
      {R"("hosts": {"a.test": "10.0.2.2"}, "tls": {"pins": {"a.test": {"spkiSha256": ["AAAA", "AAAA"], "expires": "2027-01-01"}}})",
       R"(network.tls.pins["a.test"].spkiSha256[0]: not a base64 SHA-256 digest (32 bytes))"},
      {R"("hosts": {"a.test": "10.0.2.2"}, "tls": {"pins": {"a.test": {"spkiSha256": [], "expires": "2027-13-01"}}})",
       R"(network.tls.pins["a.test"].expires: not a date (YYYY-MM-DD))"},
      {R"("tls": {"pins": {"b.test": {"spkiSha256": [], "expires": "2027-01-01"}}})",
       R"(network.tls.pins["b.test"]: host is not in network.hosts)"},
      {R"("tls": {"allowTls12": ["legacy.test"]})", R"(network.tls.allowTls12[0]: host "legacy.test" is not in network.hosts)"},
      // Host names are what the URL parser reads from a URL naming them (common/url.h).
      {R"("hosts": {"127.1": "10.0.2.2"})", R"(network.hosts["127.1"]: a URL naming it reaches 127.0.0.1, not this name)"},
      {R"("hosts": {"xn--zz.test": "10.0.2.2"})",
       R"(network.hosts["xn--zz.test"]: not a host name a URL can name (url host: xn--zz is not valid punycode))"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.json);
    auto problems = problemsOf(withNetwork(c.json));
    CAPTURE(problems.size());
    for (const auto& p : problems) CAPTURE(p);
    CHECK(contains(problems, c.problem));
  }
}

TEST_CASE("a principal's name is not a host: any name of letters, digits, '-', '.', '_'") {
  CHECK(problemsOf(withNetwork(R"("principals": {"1234": {"uid": 1300}, "web.0x1": {"uid": 1301}})")).empty());
}

TEST_CASE("every problem in a config is reported at once, not just the first") {
  auto problems = problemsOf(withNetwork(R"("hosts": {"a": "x", "b": "y"}, "devnet": {"enabled": 1}, "bogus": 2)"));
  CHECK(problems.size() == 4);
  CHECK(contains(problems, R"(network.hosts["a"]: not an IPv4 address)"));
  CHECK(contains(problems, R"(network.hosts["b"]: not an IPv4 address)"));
  CHECK(contains(problems, "network.devnet.enabled: expected true or false, found a number"));
  CHECK(contains(problems, "network.bogus: unknown field"));
}

TEST_CASE("text that is not JSON is refused with a clear message") {
  auto problems = problemsOf("{\"network\": ");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].rfind("(file): not valid JSON", 0) == 0);
  CHECK(problemsOf("[1,2]") == std::vector<std::string>{": expected an object, found an array"});
}

TEST_CASE("hostile configs (deep nesting, huge input) are refused without a crash") {
  std::string deep(100000, '[');
  CHECK_FALSE(problemsOf(deep).empty());
  std::string nested = "{\"network\": {\"devnet\": ";
  for (int i = 0; i < 200; ++i) nested += "{\"enabled\": ";
  CHECK_FALSE(problemsOf(nested).empty());
  std::string huge = "{\"network\": {\"hosts\": {\"a\": \"" + std::string(kMaxConfigBytes, 'x') + "\"}}}";
  auto p = problemsOf(huge);
  REQUIRE(p.size() == 1);
  CHECK(p[0].find("larger than") != std::string::npos);
}

TEST_CASE("a missing config file is unreadable, not an empty policy") {
  auto r = loadConfigFile("/nonexistent/capnet/network.json");
  REQUIRE(std::holds_alternative<ConfigProblems>(r));
  CHECK(std::get<ConfigProblems>(r).code == ConfigError::kUnreadable);
}

TEST_CASE("IPv4, date and base64 parsers accept exactly their formats") {
  uint32_t a = 0;
  CHECK(parseIpv4Dotted("10.0.2.2", a));
  CHECK(a == 0x0a000202u);
  CHECK_FALSE(parseIpv4Dotted("10.0.2.02", a));
  CHECK_FALSE(parseIpv4Dotted("10.0.2.2 ", a));
  CHECK_FALSE(parseIpv4Dotted("1.2.3.4.5", a));
  CHECK_FALSE(parseIpv4Dotted("", a));
  int64_t ms = 0;
  CHECK(parseDate("2026-06-01", ms));
  CHECK(ms == 1780272000000LL);
  CHECK_FALSE(parseDate("2027-02-29", ms));
  CHECK(parseDate("2028-02-29", ms));
  std::vector<uint8_t> out;
  CHECK(decodeBase64("aGk=", out));
  CHECK(out == std::vector<uint8_t>{'h', 'i'});
  CHECK_FALSE(decodeBase64("aGk", out));
  CHECK_FALSE(decodeBase64("a=Gk", out));
  CHECK_FALSE(decodeBase64("aGk=\n", out));   // whitespace
  CHECK_FALSE(decodeBase64("aG k=", out));
  CHECK_FALSE(decodeBase64("aGl=", out));     // non-zero padding bits: not canonical
  CHECK_FALSE(decodeBase64("aGk*", out));
  CHECK(decodeBase64("", out));
  CHECK(out.empty());
}

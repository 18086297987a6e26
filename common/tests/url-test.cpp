#include <doctest/doctest.h>

#include "common/url.h"

using namespace capnet;

TEST_CASE("URLs: scheme, host, default ports, target, and the fragment is dropped") {
  auto u = parseUrl("https://Devnet.Test/a/b?x=1#secret");
  REQUIRE(u.ok());
  CHECK(u->scheme == "https");
  CHECK(u->host == "devnet.test");
  CHECK(u->port == 443);
  CHECK(u->target == "/a/b?x=1");
  CHECK(u->text() == "https://devnet.test/a/b?x=1");
  auto h = parseUrl("http://fixture.local");
  REQUIRE(h.ok());
  CHECK(h->port == 80);
  CHECK(h->target == "/");
  auto p = parseUrl("http://10.0.2.100:8080?q");
  REQUIRE(p.ok());
  CHECK(p->port == 8080);
  CHECK(p->target == "/?q");
}

TEST_CASE("URLs fetchd does not handle are refused with the part and the reason") {
  struct Case {
    const char* url;
    const char* message;
  } cases[] = {
      {"ftp://devnet.test/", "url scheme: \"ftp\" is not supported (http or https only)"},
      {"devnet.test/", "url scheme: missing (expected http:// or https://)"},
      {"https://user:pw@devnet.test/", "url userinfo: credentials in URLs are refused"},
      {"https://[::1]/", "url host: IPv6 literals are not supported"},
      {"https://devnet.test:0/", "url port: 0 is out of range 1..65535"},
      {"https://devnet.test:65536/", "url port: 65536 is out of range 1..65535"},
      {"https://devnet.test:12a/", "url port: not a number"},
      {"https:///x", "url host: empty"},
      {"https://dev..test/", "url host: empty label"},
      {"https://d\xc3\xa9v.test/", "url : contains non-ASCII bytes (IDNs are not supported)"},
      {"https://devnet.test/a b", "url : contains a space or control character"},
      {"https://devnet.test/\x01", "url : contains a space or control character"},
      {"https://devnet.test/%zz", "url path: malformed percent-encoding"},
      {"https://devnet.test/<x>", "url path: character '<' must be percent-encoded"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.url);
    auto r = parseUrl(c.url);
    REQUIRE_FALSE(r.ok());
    CHECK(r.message() == c.message);
  }
  CHECK(parseUrl("ftp://x/").code() == UrlError::kScheme);
  CHECK(parseUrl("https://" + std::string(5000, 'a')).message() == "url : longer than 4096 bytes");
}

TEST_CASE("redirect targets resolve as RFC 3986 references against the request URL") {
  auto base = parseUrl("http://devnet.test/a/b/c?q=1");
  REQUIRE(base.ok());
  auto text = [&](const char* ref) {
    auto r = resolveReference(base.value(), ref);
    return r.ok() ? r->text() : std::string("refused: ") + r.message();
  };
  CHECK(text("next.html") == "http://devnet.test/a/b/next.html");
  CHECK(text("./x") == "http://devnet.test/a/b/x");
  CHECK(text("../x") == "http://devnet.test/a/x");
  CHECK(text("../../../../x") == "http://devnet.test/x");
  CHECK(text("/root?z") == "http://devnet.test/root?z");
  CHECK(text("?only") == "http://devnet.test/a/b/c?only");
  CHECK(text("") == "http://devnet.test/a/b/c?q=1");
  CHECK(text("#frag") == "http://devnet.test/a/b/c?q=1");
  CHECK(text("//other.test/p") == "http://other.test/p");        // scheme-relative: another host.
  CHECK(text("https://devnet.test/s") == "https://devnet.test/s");
  CHECK(text("a:b") .rfind("refused", 0) == 0);                  // a scheme fetchd does not speak.
  CHECK(removeDotSegments("/a/b/c/./../../g") == "/a/g");          // RFC 3986 5.2.4's example.
  CHECK(removeDotSegments("mid/content=5/../6") == "mid/6");
}

TEST_CASE("URLs: hosts and ports are what the WHATWG URL Standard yields, or refused") {
  struct Case {
    const char* url;
    const char* host;   // nullptr: refused
    uint16_t port;
  } cases[] = {
      // A host whose last label is a number is an IPv4 address, in every number form the standard reads.
      {"http://127.1/", "127.0.0.1", 80},
      {"http://0x7f.1/", "127.0.0.1", 80},
      {"http://0x7F000001/", "127.0.0.1", 80},
      {"http://2130706433/", "127.0.0.1", 80},
      {"http://017700000001/", "127.0.0.1", 80},
      {"http://0300.0250.0.1/", "192.168.0.1", 80},
      {"http://10.0.2.100./", "10.0.2.100", 80},
      {"http://0x/", "0.0.0.0", 80},
      {"http://4294967295/", "255.255.255.255", 80},
      {"http://1.2.65535/", "1.2.255.255", 80},
      // ... or refused, never read as a name.
      {"http://1.2.3.256/", nullptr, 0},
      {"http://256.0.0.1/", nullptr, 0},
      {"http://1.2.3.4.5/", nullptr, 0},
      {"http://4294967296/", nullptr, 0},
      {"http://09.1.1.1/", nullptr, 0},
      {"http://1.2.3.09/", nullptr, 0},
      {"http://foo.1/", nullptr, 0},
      {"http://foo.09/", nullptr, 0},
      {"http://a.0x/", nullptr, 0},
      {"http://1.2.65536/", nullptr, 0},
      // Names whose last label is not a number stay names.
      {"http://1.com/", "1.com", 80},
      {"http://0x1g.com/", "0x1g.com", 80},
      {"http://example.1a/", "example.1a", 80},
      {"http://Devnet.TEST/", "devnet.test", 80},
      // xn-- labels must be valid punycode.
      {"http://xn--mnchen-3ya.test/", "xn--mnchen-3ya.test", 80},
      {"http://xn--zz.test/", nullptr, 0},
      {"http://xn--abc-.test/", nullptr, 0},       // decodes to ASCII only
      {"http://xn--.test/", nullptr, 0},
      {"http://xn--99999999999a.test/", nullptr, 0},   // overflows
      // Ports: leading zeros and an empty port are the standard's; 0 is refused (stricter).
      {"http://devnet.test:0080/", "devnet.test", 80},
      {"https://devnet.test:/", "devnet.test", 443},
      {"http://devnet.test:65535/", "devnet.test", 65535},
      {"http://devnet.test:0/", nullptr, 0},
      {"http://devnet.test:99999999999999999999/", nullptr, 0},
  };
  for (const auto& c : cases) {
    auto u = parseUrl(c.url);
    if (c.host == nullptr) {
      CHECK_MESSAGE(!u.ok(), c.url << " was accepted as " << (u.ok() ? u->host : std::string()));
      continue;
    }
    REQUIRE_MESSAGE(u.ok(), c.url << ": " << (u.ok() ? std::string() : u.message()));
    CHECK_MESSAGE(u->host == c.host, c.url);
    CHECK_MESSAGE(u->port == c.port, c.url);
  }
  auto why = parseUrl("http://foo.1/");
  REQUIRE_FALSE(why.ok());
  CHECK(why.message() == "url host: foo.1 ends in a number but is not an IPv4 address");
}

TEST_CASE("URLs: scopes add tcp:// (a port required) and tls:// (443), and only where asked for") {
  auto tcp = parseUrl("tcp://devnet.test:7", UrlSchemes::kScopes);
  REQUIRE(tcp.ok());
  CHECK(tcp->port == 7);
  CHECK_FALSE(parseUrl("tcp://devnet.test", UrlSchemes::kScopes).ok());
  auto tls = parseUrl("tls://0x0a.0.2.100", UrlSchemes::kScopes);
  REQUIRE(tls.ok());
  CHECK(tls->host == "10.0.2.100");
  CHECK(tls->port == 443);
  CHECK(parseUrl("tcp://devnet.test:7").code() == UrlError::kScheme);   // fetchd never fetches tcp://
}

#include <doctest/doctest.h>

#include "fetchd/url.h"

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
      {"https://devnet.test:/", "url port: empty"},
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

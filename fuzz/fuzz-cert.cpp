// Certificate chains into the verification netd runs after every handshake (and trustctl verify):
// the input is up to six certificates, each prefixed with a 2-byte big-endian length, checked
// against the test PKI's root; each is also walked for its extensions and SubjectPublicKeyInfo.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <span>
#include <string>
#include <vector>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "trust/cert.h"
#include "trust/spki.h"
#include "trust/trust-store.h"
#include "trust/verify.h"
#include "trust/x509-ext.h"

namespace {
std::vector<capnet::TrustRoot> gRoots;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  wolfSSL_Init();
  std::ifstream in(std::string(CAPNET_BUILD_DIR) + "/selftest/tls/ca.pem");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  auto root = capnet::parseRoot(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pem.data()), pem.size()));
  if (root.ok()) gRoots.push_back(root.value());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> chain;
  size_t pos = 0;
  while (pos + 2 <= size && chain.size() < 6) {
    size_t len = (static_cast<size_t>(data[pos]) << 8) | data[pos + 1];
    pos += 2;
    if (len > size - pos) len = size - pos;
    chain.emplace_back(reinterpret_cast<const char*>(data + pos), len);
    pos += len;
  }
  for (const auto& der : chain) {
    std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(der.data()), der.size());
    (void)capnet::parseExtensions(bytes);
    (void)capnet::spkiSha256(bytes);
    (void)capnet::parseCert(bytes);
  }
  capnet::VerifyPolicy policy;
  policy.host = "devnet.test";
  policy.nowMs = 1780272000000LL;
  policy.pins.push_back({});
  policy.pinsExpireAtMs = policy.nowMs + 1;
  (void)capnet::verifyChain(chain, gRoots, policy);
  return 0;
}

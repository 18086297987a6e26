// PEM into the trust store's parser (a root an operator or an attacker offers to install).
#include <cstddef>
#include <cstdint>
#include <span>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "trust/trust-store.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  wolfSSL_Init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)capnet::parseRoot(std::span<const uint8_t>(data, size));
  return 0;
}

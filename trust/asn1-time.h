// ASN.1 times (certificate validity) as wall-clock milliseconds: one conversion for the trust
// store's install checks and the chain verification.
#pragma once

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <cstdint>
#include <ctime>

namespace capnet {

inline bool asn1TimeToEpochMs(const WOLFSSL_ASN1_TIME* t, int64_t& ms) {
  struct tm tm {};
  if (t == nullptr || wolfSSL_ASN1_TIME_to_tm(t, &tm) != WOLFSSL_SUCCESS) return false;
  ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  return true;
}

}  // namespace capnet

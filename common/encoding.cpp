#include "common/encoding.h"

#include <kj/encoding.h>

#include <string>

namespace capnet {
namespace {

int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  // Howard Hinnant's days_from_civil: proleptic Gregorian calendar, days since 1970-01-01.
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

bool parseDate(std::string_view t, int64_t& ms) {
  if (t.size() != 10 || t[4] != '-' || t[7] != '-') return false;
  auto num = [&](size_t from, size_t len, unsigned& out) {
    out = 0;
    for (size_t i = from; i < from + len; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      out = out * 10 + static_cast<unsigned>(t[i] - '0');
    }
    return true;
  };
  unsigned y, m, d;
  if (!num(0, 4, y) || !num(5, 2, m) || !num(8, 2, d)) return false;
  static const unsigned kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1970 || m < 1 || m > 12 || d < 1 || d > kDays[m - 1]) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2 && d == 29 && !leap) return false;
  ms = daysFromCivil(y, m, d) * 86400000LL;
  return true;
}

bool decodeBase64(std::string_view text, std::vector<uint8_t>& out) {
  out.clear();
  auto decoded = kj::decodeBase64(kj::arrayPtr(text.data(), text.size()));
  if (decoded.hadErrors) return false;
  auto again = kj::encodeBase64(decoded);
  if (std::string_view(again.cStr(), again.size()) != text) return false;   // not canonical
  out.assign(decoded.begin(), decoded.end());
  return true;
}

}  // namespace capnet

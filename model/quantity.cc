#include "model/quantity.h"

#include <cstdlib>

namespace ballast::model {
namespace {

using i128 = __int128;

constexpr i128 kNanosPerUnit = 1'000'000'000;
// Kubernetes keeps quantities within int64 units; beyond that values are refused.
constexpr i128 kMaxNanos = i128(INT64_MAX) * kNanosPerUnit;

i128 Pow10(int e) {
  i128 r = 1;
  while (e-- > 0) r *= 10;
  return r;
}

// Multiplies with an overflow guard against kMaxNanos.
bool MulChecked(i128 a, i128 b, i128* out) {
  if (a != 0 && (b > kMaxNanos / (a < 0 ? -a : a))) return false;
  *out = a * b;
  return true;
}

// Ceil division for a positive divisor (Kubernetes rounds sub-nano precision up).
i128 DivCeil(i128 a, i128 b) {
  i128 q = a / b;
  if (a % b != 0 && a > 0) ++q;
  return q;
}

std::string I128ToString(i128 v) {
  if (v == 0) return "0";
  bool neg = v < 0;
  if (neg) v = -v;
  std::string s;
  while (v > 0) {
    s.insert(s.begin(), char('0' + int(v % 10)));
    v /= 10;
  }
  return neg ? "-" + s : s;
}

int64_t Saturate(i128 v) {
  if (v > INT64_MAX) return INT64_MAX;
  if (v < INT64_MIN) return INT64_MIN;
  return int64_t(v);
}

const char kSyntaxError[] =
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

}  // namespace

Result<Quantity> Quantity::Parse(std::string_view text) {
  if (text.empty()) return InvalidArgument(kSyntaxError);
  size_t i = 0;
  bool negative = false;
  if (text[i] == '+' || text[i] == '-') {
    negative = text[i] == '-';
    ++i;
  }
  i128 mantissa = 0;
  int decimals = 0;
  int digits = 0;
  bool seen_dot = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.') {
      if (seen_dot) return InvalidArgument(kSyntaxError);
      seen_dot = true;
      continue;
    }
    if (c < '0' || c > '9') break;
    ++digits;
    if (mantissa == 0 && c == '0' && !seen_dot) continue;  // leading zeros
    if (digits > 30) return InvalidArgument("quantity has too many digits");
    mantissa = mantissa * 10 + (c - '0');
    if (seen_dot) ++decimals;
  }
  if (digits == 0) return InvalidArgument(kSyntaxError);

  std::string_view suffix = text.substr(i);
  int exp10 = 0;    // decimal exponent from the suffix
  int pow1024 = 0;  // binary exponent from the suffix
  Format format = Format::kDecimalSI;
  if (suffix.empty()) {
  } else if (suffix.size() == 2 && suffix[1] == 'i') {
    static constexpr std::string_view kBinary = "KMGTPE";
    size_t k = kBinary.find(suffix[0]);
    if (k == std::string_view::npos) return InvalidArgument(kSyntaxError);
    pow1024 = int(k) + 1;
    format = Format::kBinarySI;
  } else if (suffix.size() == 1 &&
             std::string_view("numkMGTPE").find(suffix[0]) != std::string_view::npos) {
    switch (suffix[0]) {
      case 'n':
        exp10 = -9;
        break;
      case 'u':
        exp10 = -6;
        break;
      case 'm':
        exp10 = -3;
        break;
      case 'k':
        exp10 = 3;
        break;
      case 'M':
        exp10 = 6;
        break;
      case 'G':
        exp10 = 9;
        break;
      case 'T':
        exp10 = 12;
        break;
      case 'P':
        exp10 = 15;
        break;
      case 'E':
        exp10 = 18;
        break;
    }
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    std::string_view rest = suffix.substr(1);
    size_t j = 0;
    bool exp_negative = false;
    if (j < rest.size() && (rest[j] == '+' || rest[j] == '-')) {
      exp_negative = rest[j] == '-';
      ++j;
    }
    if (j == rest.size() || rest.size() - j > 3) return InvalidArgument(kSyntaxError);
    int e = 0;
    for (; j < rest.size(); ++j) {
      if (rest[j] < '0' || rest[j] > '9') return InvalidArgument(kSyntaxError);
      e = e * 10 + (rest[j] - '0');
    }
    exp10 = exp_negative ? -e : e;
    format = Format::kDecimalExponent;
  } else {
    return InvalidArgument(kSyntaxError);
  }

  // nanos = mantissa * 10^(exp10 + 9 - decimals) * 1024^pow1024
  i128 value = mantissa;
  for (int k = 0; k < pow1024; ++k) {
    if (!MulChecked(value, 1024, &value)) return InvalidArgument("quantity is too large");
  }
  int shift = exp10 + 9 - decimals;
  if (shift >= 0) {
    if (shift > 38 && value != 0) return InvalidArgument("quantity is too large");
    if (!MulChecked(value, Pow10(shift), &value)) return InvalidArgument("quantity is too large");
  } else {
    value = -shift > 38 ? (value > 0 ? 1 : 0) : DivCeil(value, Pow10(-shift));
  }
  if (value > kMaxNanos) return InvalidArgument("quantity is too large");
  Quantity q;
  q.nanos_ = negative ? -value : value;
  q.format_ = format;
  return q;
}

Quantity Quantity::FromMilli(int64_t milli) {
  Quantity q;
  q.nanos_ = i128(milli) * 1'000'000;
  return q;
}

Quantity Quantity::FromUnits(int64_t units, Format format) {
  Quantity q;
  q.nanos_ = i128(units) * kNanosPerUnit;
  q.format_ = format;
  return q;
}

int64_t Quantity::Value() const { return Saturate(DivCeil(nanos_, kNanosPerUnit)); }

int64_t Quantity::MilliValue() const { return Saturate(DivCeil(nanos_, 1'000'000)); }

std::string Quantity::ToString() const {
  if (nanos_ == 0) return "0";
  i128 abs = nanos_ < 0 ? -nanos_ : nanos_;
  std::string sign = nanos_ < 0 ? "-" : "";
  if (format_ == Format::kBinarySI && abs % kNanosPerUnit == 0) {
    i128 units = abs / kNanosPerUnit;
    static const char* kSuffix[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    int k = 0;
    while (k < 6 && units % 1024 == 0 && units >= 1024) {
      units /= 1024;
      ++k;
    }
    return sign + I128ToString(units) + kSuffix[k];
  }
  // Decimal: the largest power of 1000 that divides the value exactly.
  static const struct {
    int exp;
    const char* si;
  } kDecimal[] = {{18, "E"}, {15, "P"}, {12, "T"}, {9, "G"},  {6, "M"},
                  {3, "k"},  {0, ""},   {-3, "m"}, {-6, "u"}, {-9, "n"}};
  for (const auto& d : kDecimal) {
    i128 div = Pow10(d.exp + 9);
    if (abs % div == 0) {
      std::string num = I128ToString(abs / div);
      if (format_ == Format::kDecimalExponent && d.exp != 0) {
        return sign + num + "e" + std::to_string(d.exp);
      }
      return sign + num + d.si;
    }
  }
  return sign + I128ToString(abs) + "n";
}

}  // namespace ballast::model

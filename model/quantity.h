#pragma once

// Resource quantities as Kubernetes parses them: "100m", "0.5", "2", "64Mi", "1G", "1e3".
// Held exactly as an integer count of nano-units, so "1000m" == "1" and "1Gi" == "1024Mi".

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "model/status.h"

namespace ballast::model {

class Quantity {
 public:
  enum class Format { kDecimalSI, kBinarySI, kDecimalExponent };

  Quantity() = default;

  // Parses Kubernetes quantity syntax. Errors name what is wrong, in the API server's words
  // ("quantities must match the regular expression ...").
  static Result<Quantity> Parse(std::string_view text);
  static Quantity FromMilli(int64_t milli);
  static Quantity FromUnits(int64_t units, Format format = Format::kDecimalSI);

  // Value in units, rounded up (Kubernetes Quantity.Value()).
  int64_t Value() const;
  // Value in thousandths, rounded up (Kubernetes Quantity.MilliValue()).
  int64_t MilliValue() const;
  bool IsZero() const { return nanos_ == 0; }
  bool IsNegative() const { return nanos_ < 0; }
  Format format() const { return format_; }

  // Canonical text, as the API server writes it back: "1Gi" for "1024Mi", "1" for "1000m",
  // "500m" for "0.5".
  std::string ToString() const;

  Quantity& operator+=(const Quantity& o) {
    nanos_ += o.nanos_;
    return *this;
  }
  Quantity& operator-=(const Quantity& o) {
    nanos_ -= o.nanos_;
    return *this;
  }
  friend Quantity operator+(Quantity a, const Quantity& b) { return a += b; }
  friend Quantity operator-(Quantity a, const Quantity& b) { return a -= b; }

  // Compared by value only; the format is presentation.
  friend bool operator==(const Quantity& a, const Quantity& b) { return a.nanos_ == b.nanos_; }
  friend std::strong_ordering operator<=>(const Quantity& a, const Quantity& b) {
    return a.nanos_ <=> b.nanos_;
  }

 private:
  __int128 nanos_ = 0;
  Format format_ = Format::kDecimalSI;
};

}  // namespace ballast::model

#include "model/quantity.h"

#include <gtest/gtest.h>

namespace ballast::model {
namespace {

Quantity Q(const char* s) {
  auto q = Quantity::Parse(s);
  EXPECT_TRUE(q.ok()) << s << ": " << q.status().ToString();
  return q.ok() ? *q : Quantity();
}

TEST(QuantityTest, ParsesKubernetesSyntax) {
  struct Case {
    const char* text;
    int64_t milli;
    const char* canonical;
  };
  const Case cases[] = {
      {"100m", 100, "100m"},
      {"0.5", 500, "500m"},
      {"2", 2000, "2"},
      {"1000m", 1000, "1"},
      {"1.5", 1500, "1500m"},
      {"1e3", 1000000, "1e3"},
      {"1E3", 1000000, "1e3"},
      {"64Mi", 67108864000, "64Mi"},
      {"1Gi", 1073741824000, "1Gi"},
      {"1024Mi", 1073741824000, "1Gi"},
      {"1G", 1000000000000, "1G"},
      {"1000M", 1000000000000, "1G"},
      {"1.5Gi", 1610612736000, "1536Mi"},
      {"+3", 3000, "3"},
      {"-1", -1000, "-1"},
      {"0", 0, "0"},
      {"0.1Ki", 102400, "102400m"},
      {"1k", 1000000, "1k"},
      {".5", 500, "500m"},
      {"5.", 5000, "5"},
      {"1n", 1, "1n"},
      {"1u", 1, "1u"},
  };
  for (const auto& c : cases) {
    auto q = Quantity::Parse(c.text);
    ASSERT_TRUE(q.ok()) << c.text << ": " << q.status().ToString();
    EXPECT_EQ(q->MilliValue(), c.milli) << c.text;
    EXPECT_EQ(q->ToString(), c.canonical) << c.text;
  }
}

TEST(QuantityTest, ComparesByValue) {
  EXPECT_EQ(Q("1000m"), Q("1"));
  EXPECT_EQ(Q("1Gi"), Q("1024Mi"));
  EXPECT_EQ(Q("1e3"), Q("1k"));
  EXPECT_EQ(Q("0.5"), Q("500m"));
  EXPECT_LT(Q("999m"), Q("1"));
  EXPECT_GT(Q("1Gi"), Q("1G"));
  EXPECT_NE(Q("1Mi"), Q("1M"));
}

TEST(QuantityTest, ValueRoundsUp) {
  EXPECT_EQ(Q("100m").Value(), 1);
  EXPECT_EQ(Q("1500m").Value(), 2);
  EXPECT_EQ(Q("1n").MilliValue(), 1);
  EXPECT_EQ(Q("64Mi").Value(), 64 * 1024 * 1024);
}

TEST(QuantityTest, Arithmetic) {
  Quantity sum = Q("250m") + Q("750m");
  EXPECT_EQ(sum, Q("1"));
  EXPECT_EQ((Q("1Gi") - Q("512Mi")).Value(), 512 * 1024 * 1024);
  EXPECT_EQ(Quantity::FromMilli(1500), Q("1.5"));
  EXPECT_EQ(Quantity::FromUnits(2), Q("2"));
}

TEST(QuantityTest, RejectsMalformed) {
  for (const char* bad : {"", "abc", "1Gx", "1.2.3", "1 Gi", "Gi", "1ki", "--1", "1e", "1e1000",
                          "1mm", "1Kii", "0x10", "m"}) {
    EXPECT_FALSE(Quantity::Parse(bad).ok()) << bad;
  }
}

TEST(QuantityTest, RejectsTooLarge) {
  EXPECT_FALSE(Quantity::Parse("100Ei").ok());
  EXPECT_FALSE(Quantity::Parse("99999999999999999999").ok());
  EXPECT_TRUE(Quantity::Parse("1Ei").ok());
}

}  // namespace
}  // namespace ballast::model

#include "model/rfc3339.h"

#include <gtest/gtest.h>

#include <limits>

namespace ballast::model {
namespace {

TEST(FormatRfc3339, SecondsInUtcAsKubernetesWritesThem) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(1'764'092'196'999), "2025-11-25T17:36:36Z");
  EXPECT_EQ(FormatRfc3339(-1), "1969-12-31T23:59:59Z");
  // Whatever an agent reports, a string comes back.
  EXPECT_FALSE(FormatRfc3339(std::numeric_limits<int64_t>::max()).empty());
  EXPECT_FALSE(FormatRfc3339(std::numeric_limits<int64_t>::min()).empty());
}

}  // namespace
}  // namespace ballast::model

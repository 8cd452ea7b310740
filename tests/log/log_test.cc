#include "log/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace ballast {
namespace {

// What a git server, a manifest or a pod can put into a message: quotes, newlines (a forged
// second event), control characters, invalid UTF-8, and keys that collide with the line's own.
const LogFields& Hostile() {
  static const LogFields fields = {
      {"error", "remote: \"denied\"\nevent=forged level=error"},
      {"path", "a b\\c=d\te\r"},
      {"bytes", std::string("\x01\x7f\xff\xfe ok", 7)},
      {"empty", ""},
      {"event", "not_the_event"},
      {"time", "1970"},
  };
  return fields;
}

TEST(Log, TextIsOneLineWhateverTheValues) {
  const std::string line = FormatLogLine(false, "git_fetch_failed", Hostile());
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_EQ(line.find('\r'), std::string::npos) << line;
  EXPECT_EQ(line.rfind("event=git_fetch_failed ", 0), 0u) << line;
  EXPECT_NE(line.find(R"(error="remote: \"denied\"\nevent=forged level=error")"), std::string::npos)
      << line;
  EXPECT_NE(line.find(R"(path="a b\\c=d\te\r")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"(bytes="\x01\x7f)"), std::string::npos) << line;
  EXPECT_NE(line.find(R"(empty="")"), std::string::npos) << line;
}

TEST(Log, PlainValuesAreNotQuoted) {
  EXPECT_EQ(FormatLogLine(false, "sync", {{"commit", "abc123"}, {"pods", "3"}}),
            "event=sync commit=abc123 pods=3");
}

TEST(Log, JsonLineParsesAndKeepsEveryField) {
  const std::string line = "{\"time\":\"2026-12-07T00:00:00.000Z\",\"level\":\"warn\"," +
                           FormatLogLine(true, "git_fetch_failed", Hostile()) + "}";
  EXPECT_EQ(line.find('\n'), std::string::npos);
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(line)) << line;
  EXPECT_EQ(j["event"], "git_fetch_failed");  // a field cannot rename the event
  EXPECT_EQ(j["time"], "2026-12-07T00:00:00.000Z");
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["error"], "remote: \"denied\"\nevent=forged level=error");
  EXPECT_EQ(j["path"], "a b\\c=d\te\r");
  EXPECT_EQ(j["empty"], "");
  // Invalid UTF-8 is replaced, not passed through to break the consumer's parser.
  EXPECT_EQ(j["bytes"].get<std::string>().substr(0, 2), "\x01\x7f");
  EXPECT_NE(j["bytes"].get<std::string>().find("\xef\xbf\xbd"), std::string::npos);
}

TEST(Log, UnknownFormatOrLevelIsRefused) {
  EXPECT_FALSE(ConfigureLogging("xml", "info"));
  EXPECT_FALSE(ConfigureLogging("json", "loud"));
  EXPECT_TRUE(ConfigureLogging("json", "error"));
  EXPECT_TRUE(ConfigureLogging("text", "info"));
}

}  // namespace
}  // namespace ballast

#pragma once

// One line per event through spdlog: `time=… level=… event=name key=value …` (values quoted and
// escaped when they hold spaces, quotes or control characters), or with --log-format json one
// JSON object per line ({"time","level","event",fields…}; invalid UTF-8 replaced), so that every
// line parses whatever a git server, a manifest or a pod put into a message.
//
// Callers never pass tokens, webhook secrets or credentials as fields. Thread-safe.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ballast {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
using LogFields = std::vector<std::pair<std::string, std::string>>;

// Configures the process's logger (stderr). `format` is "text" or "json"; `level` one of debug,
// info, warn, error. False (nothing changed) when a value is unknown.
bool ConfigureLogging(const std::string& format, const std::string& level);

void LogEvent(LogLevel level, std::string_view event, const LogFields& fields = {});

// The line LogEvent writes after the time and level, for tests: `event=… k=v` or the members of
// the JSON object without its braces.
std::string FormatLogLine(bool json, std::string_view event, const LogFields& fields);

}  // namespace ballast

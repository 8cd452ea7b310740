#pragma once

// One line per event through spdlog, fields as key=value (or one JSON object per line with
// --log-format json). Callers never pass tokens, webhook secrets or credentials as fields.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ballast::reconciler {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
using LogFields = std::vector<std::pair<std::string, std::string>>;

// Configures the default spdlog logger (stderr). `format` is "text" or "json"; `level` one of
// debug, info, warn, error. InvalidArgument-style false when a value is unknown.
bool ConfigureLogging(const std::string& format, const std::string& level);

void LogEvent(LogLevel level, std::string_view event, const LogFields& fields = {});

}  // namespace ballast::reconciler

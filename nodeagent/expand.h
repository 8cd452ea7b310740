#pragma once

// Kubernetes' $(VAR) expansion for command, args and env values: "$(NAME)" becomes the value of
// NAME when defined and stays as written otherwise, "$$" is an escaped "$", anything else is
// copied. Pure.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace ballast::nodeagent {

using VarLookup = std::function<std::optional<std::string>(const std::string&)>;

std::string ExpandVars(std::string_view input, const VarLookup& lookup);
std::string ExpandVars(std::string_view input, const std::map<std::string, std::string>& vars);

}  // namespace ballast::nodeagent

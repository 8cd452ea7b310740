#include "nodeagent/expand.h"

namespace ballast::nodeagent {

std::string ExpandVars(std::string_view input, const VarLookup& lookup) {
  std::string out;
  out.reserve(input.size());
  size_t i = 0;
  while (i < input.size()) {
    char c = input[i];
    if (c != '$' || i + 1 >= input.size()) {  // a trailing '$' is copied
      out.push_back(c);
      ++i;
      continue;
    }
    char next = input[i + 1];
    if (next == '$') {  // "$$" -> "$"
      out.push_back('$');
      i += 2;
    } else if (next == '(') {
      size_t close = input.find(')', i + 2);
      if (close == std::string_view::npos) {  // incomplete reference: copy "$(" and go on
        out.append("$(");
        i += 2;
        continue;
      }
      std::string name(input.substr(i + 2, close - i - 2));
      auto value = lookup(name);
      if (value) {
        out += *value;
      } else {
        out.append("$(").append(name).push_back(')');
      }
      i = close + 1;
    } else {  // "$x": not an expression, copied as is
      out.push_back('$');
      out.push_back(next);
      i += 2;
    }
  }
  return out;
}

std::string ExpandVars(std::string_view input, const std::map<std::string, std::string>& vars) {
  return ExpandVars(input, [&vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  });
}

}  // namespace ballast::nodeagent

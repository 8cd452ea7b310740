#include "nodeagent/service_env.h"

#include <cctype>

namespace ballast::nodeagent {

std::string EnvVarName(const std::string& name) {
  std::string out;
  for (char c : name) {
    out.push_back(c == '-' || c == '.'
                      ? '_'
                      : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

model::StringMap ServiceEnvironment(const std::vector<agentapi::DesiredService>& services,
                                    const std::string& namespace_, const std::string& node_address,
                                    bool use_cluster_ips) {
  model::StringMap env;
  for (const auto& s : services) {
    if (s.namespace_ != namespace_ || s.ports.empty()) continue;
    std::string prefix = EnvVarName(s.name) + "_SERVICE_";
    env[prefix + "HOST"] = use_cluster_ips && !s.cluster_ip.empty() ? s.cluster_ip : node_address;
    env[prefix + "PORT"] = std::to_string(s.ports[0].port);
    for (const auto& p : s.ports) {
      if (!p.name.empty()) env[prefix + "PORT_" + EnvVarName(p.name)] = std::to_string(p.port);
    }
  }
  return env;
}

}  // namespace ballast::nodeagent

#include "agentapi/protocol.h"

#include <arpa/inet.h>

#include <map>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "model/base64.h"
#include "model/config_refs.h"

namespace ballast::agentapi {

using model::Json;

namespace {

// Reads an optional field of type T: absent or null keeps *out; a value of another type is an
// error naming `where.name`.
template <typename T>
Status Field(const Json& j, const char* name, T* out, const std::string& where) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // nlohmann converts a float (5.5e64) or an out-of-range integer with a C++ cast: undefined
    // behaviour for floats, a silent wrap for integers. An integer field takes integers only.
    const bool fits = it->is_number_unsigned()  ? std::in_range<T>(it->get<uint64_t>())
                      : it->is_number_integer() ? std::in_range<T>(it->get<int64_t>())
                                                : false;
    if (!fits) {
      return InvalidArgument(where + "." + name + ": not an integer in range (" + it->type_name() +
                             " " + it->dump().substr(0, 40) + ")");
    }
  }
  try {
    *out = it->get<T>();
  } catch (const std::exception&) {
    return InvalidArgument(where + "." + name + ": wrong type (" + it->type_name() + ")");
  }
  return Status::Ok();
}

// The array at `name`, or nullptr when absent or null; an error when it is something else.
Result<const Json*> ArrayField(const Json& j, const char* name, const std::string& where) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return static_cast<const Json*>(nullptr);
  if (!it->is_array()) {
    return InvalidArgument(where + "." + name + ": not an array (" + it->type_name() + ")");
  }
  return &*it;
}

// The sender's protocol version ("protocolVersion", 1 when absent): one this side speaks?
Result<int> Version(const Json& j, const std::string& where) {
  int version = 1;
  if (Status s = Field(j, "protocolVersion", &version, where); !s.ok()) return s;
  if (version < kMinProtocolVersion || version > kProtocolVersion) {
    return FailedPrecondition(where + ": agent protocol version " + std::to_string(version) +
                              " is not spoken here (this side speaks " +
                              std::to_string(kMinProtocolVersion) + " to " +
                              std::to_string(kProtocolVersion) +
                              "): run the same ballast version on the reconciler and the agents");
  }
  return version;
}

Status RequireObject(const Json& j, const std::string& where) {
  if (j.is_object()) return Status::Ok();
  return InvalidArgument(where + ": not an object (" + j.type_name() + ")");
}

std::string Indexed(const std::string& where, const char* name, size_t i) {
  return where + "." + name + "[" + std::to_string(i) + "]";
}

// {"kind", "name", "data": {key: base64}}, and "namespace" when `namespace_` is given (the
// desired state's deduplicated list).
Json ConfigSourceJson(const PodConfigSource& c, const std::string* namespace_) {
  Json data = Json::object();
  for (const auto& [k, v] : c.data) data[k] = model::Base64Encode(v);
  Json j = Json{{"kind", c.kind}, {"name", c.name}, {"data", std::move(data)}};
  if (!c.binary_data.empty()) {
    Json binary = Json::object();
    for (const auto& [k, v] : c.binary_data) binary[k] = model::Base64Encode(v);
    j["binaryData"] = std::move(binary);
  }
  if (namespace_ != nullptr) j["namespace"] = *namespace_;
  return j;
}

Result<PodConfigSource> ConfigSourceFromJson(const Json& e, const std::string& at,
                                             std::string* namespace_) {
  if (Status st = RequireObject(e, at); !st.ok()) return st;
  PodConfigSource c;
  model::StringMap data, binary_data;
  Status st = Field(e, "kind", &c.kind, at);
  if (st.ok()) st = Field(e, "name", &c.name, at);
  if (st.ok()) st = Field(e, "data", &data, at);
  if (st.ok()) st = Field(e, "binaryData", &binary_data, at);
  if (st.ok() && namespace_ != nullptr) st = Field(e, "namespace", namespace_, at);
  if (!st.ok()) return st;
  if (c.kind != "ConfigMap" && c.kind != "Secret") {
    return InvalidArgument(at + ".kind: not ConfigMap or Secret");
  }
  for (auto& [k, v] : data) {
    auto bytes = model::Base64Decode(v);
    if (!bytes) return InvalidArgument(at + ".data." + k + ": not base64");
    c.data[k] = std::move(*bytes);
  }
  if (!binary_data.empty() && c.kind != "ConfigMap") {
    return InvalidArgument(at + ".binaryData: only a ConfigMap has binaryData");
  }
  for (auto& [k, v] : binary_data) {
    auto bytes = model::Base64Decode(v);
    if (!bytes) return InvalidArgument(at + ".binaryData." + k + ": not base64");
    c.binary_data[k] = std::move(*bytes);
  }
  return c;
}

}  // namespace

Json ToJson(const RegisterRequest& request) {
  return Json{{"protocolVersion", request.protocol_version}, {"node", model::ToJson(request.node)}};
}

Json ToJson(const RegisterResponse& response) {
  Json j{{"protocolVersion", response.protocol_version},
         {"heartbeatSeconds", response.heartbeat_seconds}};
  if (!response.credential.empty()) j["credential"] = response.credential;
  if (!response.logs_token.empty()) j["logsToken"] = response.logs_token;
  return j;
}

Json ToJson(const DesiredPod& pod) {
  Json j = Json{{"name", pod.name},
                {"namespace", pod.namespace_},
                {"deployment", pod.deployment},
                {"revision", pod.revision},
                {"template", model::PodTemplateToJson(pod.template_)},
                {"env", pod.env},
                {"draining", pod.draining}};
  if (!pod.config.empty()) {
    Json config = Json::array();
    for (const auto& c : pod.config) config.push_back(ConfigSourceJson(c, nullptr));
    j["config"] = std::move(config);
  }
  return j;
}

Json ToJson(const DesiredService& service) {
  Json ports = Json::array();
  for (const auto& p : service.ports) {
    ports.push_back(Json{{"name", p.name},
                         {"protocol", p.protocol},
                         {"port", p.port},
                         {"nodePort", p.node_port},
                         {"endpoints", p.endpoints}});
  }
  return Json{{"name", service.name},
              {"namespace", service.namespace_},
              {"clusterIP", service.cluster_ip},
              {"ports", ports}};
}

Json ToJson(const DesiredState& state) {
  Json pods = Json::array(), services = Json::array();
  // Pods of one namespace often read the same objects: each goes once, at the state's level.
  std::map<std::tuple<std::string, std::string, std::string>, const PodConfigSource*> config;
  for (const auto& p : state.pods) {
    Json pj = ToJson(p);
    pj.erase("config");
    pods.push_back(std::move(pj));
    for (const auto& c : p.config) config.emplace(std::tuple(p.namespace_, c.kind, c.name), &c);
  }
  for (const auto& s : state.services) services.push_back(ToJson(s));
  Json j = Json{{"protocolVersion", state.protocol_version},
                {"node", state.node},
                {"version", state.version},
                {"pods", pods},
                {"services", services}};
  if (!config.empty()) {
    Json list = Json::array();
    for (const auto& [key, c] : config) list.push_back(ConfigSourceJson(*c, &std::get<0>(key)));
    j["config"] = std::move(list);
  }
  return j;
}

Json ToJson(const Heartbeat& heartbeat) {
  Json pods = Json::array();
  for (const auto& p : heartbeat.pods) pods.push_back(model::ToJson(p));
  return Json{{"protocolVersion", heartbeat.protocol_version},
              {"node", model::ToJson(heartbeat.node)},
              {"pods", pods},
              {"servicesVersion", heartbeat.services_version},
              {"drainingEndpoints", heartbeat.draining_endpoints}};
}

Result<RegisterRequest> RegisterRequestFromJson(const Json& j) {
  const std::string where = "register";
  if (Status s = RequireObject(j, where); !s.ok()) return s;
  auto version = Version(j, where);
  if (!version.ok()) return version.status();
  auto node = j.find("node");
  if (node == j.end()) return InvalidArgument(where + ".node: required");
  auto decoded = model::NodeFromJson(*node);
  if (!decoded.ok()) return decoded.status().WithContext(where + ".node");
  return RegisterRequest{*version, std::move(*decoded)};
}

Result<RegisterResponse> RegisterResponseFromJson(const Json& j) {
  const std::string where = "register answer";
  if (Status s = RequireObject(j, where); !s.ok()) return s;
  auto version = Version(j, where);
  if (!version.ok()) return version.status();
  RegisterResponse r;
  r.protocol_version = *version;
  r.heartbeat_seconds = 0;
  Status s = Field(j, "heartbeatSeconds", &r.heartbeat_seconds, where);
  if (s.ok()) s = Field(j, "credential", &r.credential, where);
  if (s.ok()) s = Field(j, "logsToken", &r.logs_token, where);
  if (!s.ok()) return s;
  return r;
}

Result<DesiredPod> DesiredPodFromJson(const Json& j) {
  if (Status s = RequireObject(j, "pod"); !s.ok()) return s;
  DesiredPod p;
  Status s = Field(j, "name", &p.name, "pod");
  const std::string where = "pod " + p.name;
  if (s.ok()) s = Field(j, "namespace", &p.namespace_, where);
  if (s.ok()) s = Field(j, "deployment", &p.deployment, where);
  if (s.ok()) s = Field(j, "revision", &p.revision, where);
  if (s.ok()) s = Field(j, "env", &p.env, where);
  if (s.ok()) s = Field(j, "draining", &p.draining, where);
  if (!s.ok()) return s;
  if (p.name.empty()) return InvalidArgument("pod: name is required");
  auto it = j.find("template");
  if (it == j.end()) return InvalidArgument(where + ": template is required");
  auto t = model::PodTemplateFromJson(*it);
  if (!t.ok()) return t.status().WithContext(where + ".template");
  p.template_ = std::move(*t);
  if (p.template_.spec.containers.empty()) return InvalidArgument(where + ": no containers");
  auto config = ArrayField(j, "config", where);
  if (!config.ok()) return config.status();
  if (*config != nullptr) {
    if ((*config)->size() > kMaxPodConfigSources) {
      return InvalidArgument(where + ".config: more than " + std::to_string(kMaxPodConfigSources) +
                             " entries");
    }
    for (size_t i = 0; i < (*config)->size(); ++i) {
      auto c = ConfigSourceFromJson((**config)[i], Indexed(where, "config", i), nullptr);
      if (!c.ok()) return c.status();
      p.config.push_back(std::move(*c));
    }
  }
  return p;
}

Result<DesiredService> DesiredServiceFromJson(const Json& j) {
  if (Status s = RequireObject(j, "service"); !s.ok()) return s;
  DesiredService s;
  Status st = Field(j, "name", &s.name, "service");
  const std::string where = "service " + s.name;
  if (st.ok()) st = Field(j, "namespace", &s.namespace_, where);
  if (st.ok()) st = Field(j, "clusterIP", &s.cluster_ip, where);
  if (!st.ok()) return st;
  in_addr parsed{};
  if (!s.cluster_ip.empty() && ::inet_pton(AF_INET, s.cluster_ip.c_str(), &parsed) != 1) {
    return InvalidArgument(where + ".clusterIP: not an IPv4 address: " + s.cluster_ip);
  }
  auto ports = ArrayField(j, "ports", where);
  if (!ports.ok()) return ports.status();
  if (*ports == nullptr) return s;
  for (size_t i = 0; i < (*ports)->size(); ++i) {
    const Json& pj = (**ports)[i];
    const std::string at = Indexed(where, "ports", i);
    if (Status r = RequireObject(pj, at); !r.ok()) return r;
    DesiredServicePort p;
    st = Field(pj, "name", &p.name, at);
    if (st.ok()) st = Field(pj, "protocol", &p.protocol, at);
    if (st.ok()) st = Field(pj, "port", &p.port, at);
    if (st.ok()) st = Field(pj, "nodePort", &p.node_port, at);
    if (st.ok()) st = Field(pj, "endpoints", &p.endpoints, at);
    if (!st.ok()) return st;
    if (p.port <= 0 || p.port > 65535) return InvalidArgument(at + ".port: out of range");
    s.ports.push_back(std::move(p));
  }
  return s;
}

Result<DesiredState> DesiredStateFromJson(const Json& j) {
  const std::string where = "desired";
  if (Status s = RequireObject(j, where); !s.ok()) return s;
  auto version = Version(j, where);
  if (!version.ok()) return version.status();
  DesiredState s;
  s.protocol_version = *version;
  Status st = Field(j, "node", &s.node, where);
  if (st.ok()) st = Field(j, "version", &s.version, where);
  if (!st.ok()) return st;
  auto pods = ArrayField(j, "pods", where);
  if (!pods.ok()) return pods.status();
  for (size_t i = 0; *pods != nullptr && i < (*pods)->size(); ++i) {
    auto p = DesiredPodFromJson((**pods)[i]);
    if (!p.ok()) return p.status().WithContext(Indexed(where, "pods", i));
    s.pods.push_back(std::move(*p));
  }
  auto services = ArrayField(j, "services", where);
  if (!services.ok()) return services.status();
  for (size_t i = 0; *services != nullptr && i < (*services)->size(); ++i) {
    auto sv = DesiredServiceFromJson((**services)[i]);
    if (!sv.ok()) return sv.status().WithContext(Indexed(where, "services", i));
    s.services.push_back(std::move(*sv));
  }
  // Each pod gets the objects of its namespace its template reads, in (kind, name) order.
  auto config = ArrayField(j, "config", where);
  if (!config.ok()) return config.status();
  if (*config != nullptr) {
    if ((*config)->size() > kMaxStateConfigSources) {
      return InvalidArgument(where + ".config: more than " +
                             std::to_string(kMaxStateConfigSources) + " entries");
    }
    std::map<std::tuple<std::string, std::string, std::string>, PodConfigSource> by_key;
    for (size_t i = 0; i < (*config)->size(); ++i) {
      std::string ns;
      auto c = ConfigSourceFromJson((**config)[i], Indexed(where, "config", i), &ns);
      if (!c.ok()) return c.status();
      std::tuple key(std::move(ns), c->kind, c->name);
      by_key.insert_or_assign(std::move(key), std::move(*c));
    }
    for (auto& p : s.pods) {
      for (const auto& [kind, name] : model::ReferencedConfig(p.template_.spec)) {
        auto it = by_key.find(std::tuple(p.namespace_, kind, name));
        if (it != by_key.end()) p.config.push_back(it->second);
      }
    }
  }
  return s;
}

Result<Heartbeat> HeartbeatFromJson(const Json& j) {
  const std::string where = "heartbeat";
  if (Status s = RequireObject(j, where); !s.ok()) return s;
  auto version = Version(j, where);
  if (!version.ok()) return version.status();
  auto node = j.find("node");
  if (node == j.end()) return InvalidArgument(where + ".node: required");
  Heartbeat h;
  h.protocol_version = *version;
  auto decoded = model::NodeFromJson(*node);
  if (!decoded.ok()) return decoded.status().WithContext(where + ".node");
  h.node = std::move(*decoded);
  // A missing list is an empty one; anything else but a list is an error, never "no pods" (which
  // would stop every pod the node runs).
  auto pods = ArrayField(j, "pods", where);
  if (!pods.ok()) return pods.status();
  for (size_t i = 0; *pods != nullptr && i < (*pods)->size(); ++i) {
    auto p = model::PodFromJson((**pods)[i]);
    if (!p.ok()) return p.status().WithContext(Indexed(where, "pods", i));
    h.pods.push_back(std::move(*p));
  }
  if (auto v = j.find("servicesVersion");
      v != j.end() && !v->is_null() && !v->is_number_integer()) {
    return InvalidArgument(where + ".servicesVersion: wrong type (" + v->type_name() +
                           "), want an integer");
  }
  if (Status s = Field(j, "servicesVersion", &h.services_version, where); !s.ok()) return s;
  if (Status s = Field(j, "drainingEndpoints", &h.draining_endpoints, where); !s.ok()) return s;
  if (h.draining_endpoints.size() > kMaxDrainingEndpoints) {
    return InvalidArgument(where + ".drainingEndpoints: more than " +
                           std::to_string(kMaxDrainingEndpoints) + " entries");
  }
  return h;
}

}  // namespace ballast::agentapi

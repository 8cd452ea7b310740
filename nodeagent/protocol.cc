#include "nodeagent/protocol.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace ballast::nodeagent {

using model::Json;

namespace {

// Reads an optional field of the expected JSON type; errors name the field.
template <typename T>
Status Field(const Json& j, const char* name, T* out, const std::string& where) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return Status::Ok();
  try {
    *out = it->get<T>();
  } catch (const std::exception&) {
    return InvalidArgument(where + "." + name + ": wrong type");
  }
  return Status::Ok();
}

}  // namespace

Json ToJson(const DesiredPod& pod) {
  return Json{{"name", pod.name},
              {"namespace", pod.namespace_},
              {"deployment", pod.deployment},
              {"revision", pod.revision},
              {"template", model::PodTemplateToJson(pod.template_)},
              {"env", pod.env}};
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
  for (const auto& p : state.pods) pods.push_back(ToJson(p));
  for (const auto& s : state.services) services.push_back(ToJson(s));
  return Json{
      {"node", state.node}, {"version", state.version}, {"pods", pods}, {"services", services}};
}

Json ToJson(const Heartbeat& heartbeat) {
  Json pods = Json::array();
  for (const auto& p : heartbeat.pods) pods.push_back(model::ToJson(p));
  return Json{{"node", model::ToJson(heartbeat.node)}, {"pods", pods}};
}

Result<DesiredPod> DesiredPodFromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("pod: not an object");
  DesiredPod p;
  Status s = Field(j, "name", &p.name, "pod");
  std::string where = "pod " + p.name;
  if (s.ok()) s = Field(j, "namespace", &p.namespace_, where);
  if (s.ok()) s = Field(j, "deployment", &p.deployment, where);
  if (s.ok()) s = Field(j, "revision", &p.revision, where);
  if (s.ok()) s = Field(j, "env", &p.env, where);
  if (!s.ok()) return s;
  if (p.name.empty()) return InvalidArgument("pod: name is required");
  auto it = j.find("template");
  if (it == j.end()) return InvalidArgument(where + ": template is required");
  auto t = model::PodTemplateFromJson(*it);
  if (!t.ok()) return t.status().WithContext(where + ".template");
  p.template_ = std::move(*t);
  if (p.template_.spec.containers.empty()) return InvalidArgument(where + ": no containers");
  return p;
}

Result<DesiredService> DesiredServiceFromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("service: not an object");
  DesiredService s;
  Status st = Field(j, "name", &s.name, "service");
  std::string where = "service " + s.name;
  if (st.ok()) st = Field(j, "namespace", &s.namespace_, where);
  if (st.ok()) st = Field(j, "clusterIP", &s.cluster_ip, where);
  if (!st.ok()) return st;
  in_addr parsed{};
  if (!s.cluster_ip.empty() && ::inet_pton(AF_INET, s.cluster_ip.c_str(), &parsed) != 1)
    return InvalidArgument(where + ".clusterIP: not an IPv4 address: " + s.cluster_ip);
  auto ports = j.find("ports");
  if (ports != j.end() && ports->is_array()) {
    for (const auto& pj : *ports) {
      if (!pj.is_object()) return InvalidArgument(where + ".ports: not an object");
      DesiredServicePort p;
      st = Field(pj, "name", &p.name, where + ".ports");
      if (st.ok()) st = Field(pj, "protocol", &p.protocol, where + ".ports");
      if (st.ok()) st = Field(pj, "port", &p.port, where + ".ports");
      if (st.ok()) st = Field(pj, "nodePort", &p.node_port, where + ".ports");
      if (st.ok()) st = Field(pj, "endpoints", &p.endpoints, where + ".ports");
      if (!st.ok()) return st;
      if (p.port <= 0 || p.port > 65535)
        return InvalidArgument(where + ".ports.port: out of range");
      s.ports.push_back(std::move(p));
    }
  }
  return s;
}

Result<DesiredState> DesiredStateFromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("desired state: not an object");
  DesiredState s;
  Status st = Field(j, "node", &s.node, "desired");
  if (st.ok()) st = Field(j, "version", &s.version, "desired");
  if (!st.ok()) return st;
  if (auto it = j.find("pods"); it != j.end() && it->is_array()) {
    for (const auto& pj : *it) {
      auto p = DesiredPodFromJson(pj);
      if (!p.ok()) return p.status().WithContext("desired.pods");
      s.pods.push_back(std::move(*p));
    }
  }
  if (auto it = j.find("services"); it != j.end() && it->is_array()) {
    for (const auto& sj : *it) {
      auto sv = DesiredServiceFromJson(sj);
      if (!sv.ok()) return sv.status().WithContext("desired.services");
      s.services.push_back(std::move(*sv));
    }
  }
  return s;
}

Result<Heartbeat> HeartbeatFromJson(const Json& j) {
  if (!j.is_object() || !j.contains("node")) return InvalidArgument("heartbeat: no node");
  Heartbeat h;
  auto node = model::NodeFromJson(j["node"]);
  if (!node.ok()) return node.status().WithContext("heartbeat.node");
  h.node = std::move(*node);
  if (auto it = j.find("pods"); it != j.end() && it->is_array()) {
    for (const auto& pj : *it) {
      auto p = model::PodFromJson(pj);
      if (!p.ok()) return p.status().WithContext("heartbeat.pods");
      h.pods.push_back(std::move(*p));
    }
  }
  return h;
}

std::string EnvVarName(const std::string& name) {
  std::string out;
  for (char c : name) {
    out.push_back(c == '-' || c == '.'
                      ? '_'
                      : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

model::StringMap ServiceEnvironment(const std::vector<DesiredService>& services,
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

DesiredStateStore::DesiredStateStore(int max_wait_seconds)
    : max_wait_seconds_(max_wait_seconds), expirer_([this] { ExpireLoop(); }) {}

DesiredStateStore::~DesiredStateStore() {
  std::vector<Waiter> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    left.swap(waiters_);
  }
  cv_.notify_all();
  expirer_.join();
  for (auto& w : left) w.responder.Send(net::ErrorResponse(503, "server stopping"));
}

int64_t DesiredStateStore::Set(const std::string& node, DesiredState state) {
  std::vector<Waiter> wake;
  int64_t version;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = states_.find(node);
    int64_t next = it == states_.end() ? 1 : it->second.version + 1;
    state.version = std::max(next, state.version);
    state.node = node;
    version = state.version;
    states_[node] = std::move(state);
    auto keep = std::stable_partition(waiters_.begin(), waiters_.end(),
                                      [&](const Waiter& w) { return w.node != node; });
    wake.assign(std::make_move_iterator(keep), std::make_move_iterator(waiters_.end()));
    waiters_.erase(keep, waiters_.end());
    Json body = ToJson(states_[node]);
    for (auto& w : wake) w.responder.Send(net::JsonResponse(200, body));
  }
  return version;
}

std::optional<DesiredState> DesiredStateStore::Get(const std::string& node) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = states_.find(node);
  if (it == states_.end()) return std::nullopt;
  return it->second;
}

void DesiredStateStore::Serve(const net::Request& request, net::Responder responder) {
  std::string node = request.Query("node");
  if (node.empty()) {
    responder.Send(net::ErrorResponse(400, "query parameter node is required"));
    return;
  }
  int64_t version = -1;
  int wait = 0;
  try {
    version = std::stoll(request.Query("version", "-1"));
    wait = std::stoi(request.Query("wait", "0"));
  } catch (const std::exception&) {
    responder.Send(net::ErrorResponse(400, "version and wait must be integers"));
    return;
  }
  wait = std::clamp(wait, 0, max_wait_seconds_);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = states_.find(node);
  if (it != states_.end() && (it->second.version != version || wait == 0)) {
    responder.Send(net::JsonResponse(200, ToJson(it->second)));
    return;
  }
  if (wait == 0 || stopping_) {
    responder.Send(net::ErrorResponse(503, "no desired state for node " + node + " yet"));
    return;
  }
  waiters_.push_back(Waiter{node, version,
                            std::chrono::steady_clock::now() + std::chrono::seconds(wait),
                            std::move(responder)});
  cv_.notify_all();
}

void DesiredStateStore::ExpireLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    auto next = now + std::chrono::seconds(1);
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->deadline <= now) {
        auto st = states_.find(it->node);
        if (st != states_.end()) {
          it->responder.Send(net::JsonResponse(200, ToJson(st->second)));
        } else {
          it->responder.Send(
              net::ErrorResponse(503, "no desired state for node " + it->node + " yet"));
        }
        it = waiters_.erase(it);
      } else {
        next = std::min(next, it->deadline);
        ++it;
      }
    }
    cv_.wait_until(lock, next);
  }
}

}  // namespace ballast::nodeagent

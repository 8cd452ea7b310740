#include "diff/state.h"

#include "diff/json_diff.h"
#include "model/codec.h"
#include "model/diagnostic.h"
#include "model/manifest.h"

namespace ballast::diff {

using model::Json;

namespace {

// A list under `key`, or an error naming what is wrong; a missing key is an empty list.
Result<const Json*> ListAt(const Json& state, const char* key) {
  auto it = state.find(key);
  if (it == state.end() || it->is_null()) return static_cast<const Json*>(nullptr);
  if (!it->is_array()) return InvalidArgument(std::string(key) + ": want a list");
  return &*it;
}

}  // namespace

Result<RecordedState> StateFromJson(const Json& state, const std::string& source) {
  if (!state.is_object()) {
    return InvalidArgument(source + ": want an object with \"objects\", \"nodes\", \"pods\"");
  }
  for (auto it = state.begin(); it != state.end(); ++it) {
    if (it.key() != "objects" && it.key() != "nodes" && it.key() != "pods") {
      return InvalidArgument(source + ": unknown key \"" + it.key() +
                             "\" (want \"objects\", \"nodes\", \"pods\")");
    }
  }
  if (JsonDeeperThan(state, kMaxJsonDepth)) {
    return InvalidArgument(source + ": nested deeper than " + std::to_string(kMaxJsonDepth) +
                           " levels");
  }
  RecordedState out;
  auto objects = ListAt(state, "objects");
  if (!objects.ok()) return objects.status().WithContext(source);
  if (*objects != nullptr) {
    for (size_t i = 0; i < (*objects)->size(); ++i) {
      std::vector<model::Diagnostic> diagnostics;
      auto m = model::DecodeManifest((**objects)[i], {source, 0, 0}, &diagnostics);
      std::string where = source + ": objects[" + std::to_string(i) + "]";
      if (!m.ok()) return m.status().WithContext(where);
      for (const auto& d : diagnostics) {
        if (d.is_error()) {
          return InvalidArgument(where + ": " + (d.field.empty() ? "" : d.field + ": ") +
                                 d.message);
        }
      }
      out.objects.push_back(std::move(*m));
    }
  }
  auto nodes = ListAt(state, "nodes");
  if (!nodes.ok()) return nodes.status().WithContext(source);
  auto pods = ListAt(state, "pods");
  if (!pods.ok()) return pods.status().WithContext(source);
  if (*nodes == nullptr && *pods == nullptr) return out;
  model::LiveState live;
  if (*nodes != nullptr) {
    for (size_t i = 0; i < (*nodes)->size(); ++i) {
      auto n = model::NodeFromJson((**nodes)[i]);
      if (!n.ok()) return n.status().WithContext(source + ": nodes[" + std::to_string(i) + "]");
      std::string name = n->name;
      if (!live.nodes.emplace(name, std::move(*n)).second) {
        return InvalidArgument(source + ": nodes[" + std::to_string(i) + "]: node \"" + name +
                               "\" listed twice");
      }
    }
  }
  if (*pods != nullptr) {
    for (size_t i = 0; i < (*pods)->size(); ++i) {
      auto p = model::PodFromJson((**pods)[i]);
      if (!p.ok()) return p.status().WithContext(source + ": pods[" + std::to_string(i) + "]");
      live.pods.push_back(std::move(*p));
    }
  }
  out.live = std::move(live);
  return out;
}

Json ToJson(const RecordedState& state) {
  Json objects = Json::array();
  for (const auto& m : state.objects) objects.push_back(model::ToJson(m));
  Json out = {{"objects", std::move(objects)}};
  if (state.live) {
    Json nodes = Json::array();
    for (const auto& [name, n] : state.live->nodes) nodes.push_back(model::ToJson(n));
    Json pods = Json::array();
    for (const auto& p : state.live->pods) pods.push_back(model::ToJson(p));
    out["nodes"] = std::move(nodes);
    out["pods"] = std::move(pods);
  }
  return out;
}

}  // namespace ballast::diff

#include "nodeagent/config_volumes.h"

#include <map>

namespace ballast::nodeagent {
namespace {

std::string Lower(const std::string& kind) { return kind == "Secret" ? "secret" : "configmap"; }

}  // namespace

std::vector<std::string> PathComponents(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(start, slash - start);
    if (!part.empty() && part != "." && part != "..") out.push_back(std::move(part));
    start = slash + 1;
  }
  return out;
}

const model::ConfigVolume* FindConfigVolume(const std::vector<model::ConfigVolume>& volumes,
                                            const std::string& name) {
  for (const auto& v : volumes) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

Result<std::vector<VolumeFile>> ProjectVolume(const model::ConfigVolume& v,
                                              const agentapi::PodConfigSource* source) {
  std::map<std::string, VolumeFile> files;  // by normalised path
  auto add = [&](const std::string& path, const std::string& data, int32_t mode) -> Status {
    std::string normal;
    for (const auto& part : PathComponents(path)) normal += (normal.empty() ? "" : "/") + part;
    if (normal.empty() || normal.rfind("..", 0) == 0) {
      return InvalidArgument("volume \"" + v.name + "\": path \"" + path +
                             "\" names no file of its own");
    }
    if (!files.emplace(normal, VolumeFile{normal, data, mode}).second) {
      return FailedPrecondition("volume \"" + v.name + "\": two files at path \"" + normal + "\"");
    }
    return Status::Ok();
  };
  if (source == nullptr) {
    if (!v.optional) return FailedPrecondition(Lower(v.kind) + " \"" + v.object + "\" not found");
    return std::vector<VolumeFile>{};
  }
  if (v.items.empty()) {
    for (const auto& [k, data] : source->data) {
      if (Status s = add(k, data, v.default_mode); !s.ok()) return s;
    }
    for (const auto& [k, data] : source->binary_data) {
      if (Status s = add(k, data, v.default_mode); !s.ok()) return s;
    }
  } else {
    for (const auto& item : v.items) {
      const std::string* data = nullptr;
      if (auto it = source->data.find(item.key); it != source->data.end()) {
        data = &it->second;
      } else if (auto b = source->binary_data.find(item.key); b != source->binary_data.end()) {
        data = &b->second;
      }
      if (data == nullptr) {
        if (v.optional) continue;
        return FailedPrecondition(
            v.kind == "Secret" ? "references non-existent secret key: " + item.key
                               : "configmap references non-existent config key: " + item.key);
      }
      if (Status s = add(item.path, *data, item.mode.value_or(v.default_mode)); !s.ok()) return s;
    }
  }
  // A file cannot also be a directory of another ("a" and "a/b").
  std::vector<VolumeFile> out;
  for (auto& [path, file] : files) {
    for (size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      if (files.count(path.substr(0, slash)) > 0) {
        return FailedPrecondition("volume \"" + v.name + "\": path \"" + path +
                                  "\" is below the file \"" + path.substr(0, slash) + "\"");
      }
    }
    out.push_back(std::move(file));
  }
  return out;
}

}  // namespace ballast::nodeagent

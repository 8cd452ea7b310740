#include "model/config_refs.h"

#include <map>
#include <set>
#include <tuple>

#include "model/digest.h"

namespace ballast::model {
namespace {

// {"name": N, "key": K, "optional": B} under valueFrom or envFrom, leniently.
void ReadRef(const Json& ref, std::string* name, std::string* key, bool* optional) {
  if (!ref.is_object()) return;
  if (auto it = ref.find("name"); it != ref.end() && it->is_string())
    *name = it->get<std::string>();
  if (key != nullptr) {
    if (auto it = ref.find("key"); it != ref.end() && it->is_string())
      *key = it->get<std::string>();
  }
  if (auto it = ref.find("optional"); it != ref.end() && it->is_boolean())
    *optional = it->get<bool>();
}

}  // namespace

std::optional<ConfigKeyRef> EnvKeyRef(const EnvVar& var) {
  if (!var.value_from.is_object()) return std::nullopt;
  for (const auto& [field, kind] :
       {std::pair<const char*, const char*>{"configMapKeyRef", "ConfigMap"},
        {"secretKeyRef", "Secret"}}) {
    auto it = var.value_from.find(field);
    if (it == var.value_from.end() || !it->is_object()) continue;
    ConfigKeyRef ref;
    ref.kind = kind;
    ReadRef(*it, &ref.name, &ref.key, &ref.optional);
    return ref;
  }
  return std::nullopt;
}

std::vector<ConfigFromRef> EnvFromRefs(const Container& container) {
  std::vector<ConfigFromRef> out;
  auto list = container.extra.find("envFrom");
  if (list == container.extra.end() || !list->is_array()) return out;
  for (const Json& e : *list) {
    if (!e.is_object()) continue;
    for (const auto& [field, kind] :
         {std::pair<const char*, const char*>{"configMapRef", "ConfigMap"},
          {"secretRef", "Secret"}}) {
      auto it = e.find(field);
      if (it == e.end() || !it->is_object()) continue;
      ConfigFromRef ref;
      ref.kind = kind;
      ReadRef(*it, &ref.name, nullptr, &ref.optional);
      if (auto p = e.find("prefix"); p != e.end() && p->is_string())
        ref.prefix = p->get<std::string>();
      out.push_back(std::move(ref));
      break;
    }
  }
  return out;
}

std::vector<ConfigVolume> ConfigVolumes(const PodSpec& spec) {
  std::vector<ConfigVolume> out;
  auto list = spec.extra.find("volumes");
  if (list == spec.extra.end() || !list->is_array()) return out;
  for (const Json& v : *list) {
    if (!v.is_object()) continue;
    for (const auto& [field, kind, name_field] :
         {std::tuple<const char*, const char*, const char*>{"configMap", "ConfigMap", "name"},
          {"secret", "Secret", "secretName"}}) {
      auto src = v.find(field);
      if (src == v.end() || !src->is_object()) continue;
      ConfigVolume cv;
      cv.kind = kind;
      if (auto n = v.find("name"); n != v.end() && n->is_string()) cv.name = n->get<std::string>();
      if (auto n = src->find(name_field); n != src->end() && n->is_string()) {
        cv.object = n->get<std::string>();
      }
      if (auto o = src->find("optional"); o != src->end() && o->is_boolean()) {
        cv.optional = o->get<bool>();
      }
      if (auto m = src->find("defaultMode"); m != src->end() && m->is_number_integer()) {
        const int64_t mode = m->get<int64_t>();
        if (mode >= 0 && mode <= kMaxVolumeFileMode) cv.default_mode = static_cast<int32_t>(mode);
      }
      if (auto items = src->find("items"); items != src->end() && items->is_array()) {
        for (const Json& item : *items) {
          if (!item.is_object()) continue;
          KeyToPath kp;
          if (auto k = item.find("key"); k != item.end() && k->is_string()) {
            kp.key = k->get<std::string>();
          }
          if (auto p = item.find("path"); p != item.end() && p->is_string()) {
            kp.path = p->get<std::string>();
          }
          if (auto m = item.find("mode"); m != item.end() && m->is_number_integer()) {
            const int64_t mode = m->get<int64_t>();
            if (mode >= 0 && mode <= kMaxVolumeFileMode) kp.mode = static_cast<int32_t>(mode);
          }
          cv.items.push_back(std::move(kp));
        }
      }
      out.push_back(std::move(cv));
      break;
    }
  }
  return out;
}

std::vector<VolumeMount> VolumeMounts(const Container& container) {
  std::vector<VolumeMount> out;
  auto list = container.extra.find("volumeMounts");
  if (list == container.extra.end() || !list->is_array()) return out;
  for (const Json& m : *list) {
    if (!m.is_object()) continue;
    VolumeMount vm;
    auto text = [&](const char* field, std::string* to) {
      if (auto it = m.find(field); it != m.end() && it->is_string()) *to = it->get<std::string>();
    };
    text("name", &vm.name);
    text("mountPath", &vm.mount_path);
    text("subPath", &vm.sub_path);
    if (auto r = m.find("readOnly"); r != m.end() && r->is_boolean()) vm.read_only = r->get<bool>();
    out.push_back(std::move(vm));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ReferencedConfig(const PodSpec& spec) {
  std::set<std::pair<std::string, std::string>> refs;
  for (const auto& v : ConfigVolumes(spec)) refs.emplace(v.kind, v.object);
  for (const auto& c : spec.containers) {
    for (const auto& e : c.env) {
      if (auto ref = EnvKeyRef(e)) refs.emplace(ref->kind, ref->name);
    }
    for (const auto& ref : EnvFromRefs(c)) refs.emplace(ref.kind, ref.name);
  }
  return {refs.begin(), refs.end()};
}

std::optional<std::map<std::string, std::string>> EnvData(const Manifest& m) {
  if (const ConfigMap* cm = m.config_map()) return cm->data;  // binaryData is for volumes only
  if (const Secret* s = m.secret()) return s->data;
  return std::nullopt;
}

void BindConfigHashes(std::vector<Manifest>* objects, std::string_view key) {
  std::map<ObjectKey, const Manifest*> config;
  for (const Manifest& m : *objects) {
    if (m.config_map() != nullptr || m.secret() != nullptr) config.emplace(m.key(), &m);
  }
  // Each object's values by key, as SHA-256 digests, computed once however many templates read
  // them: the HMAC input stays small (a 1 MiB ConfigMap read by 2,000 envFrom entries is 2,000
  // digests of a few hundred bytes, not 2,000 copies of the data).
  struct Digests {
    std::map<std::string, std::string> by_key;
    std::string whole;  // of every key and value, for envFrom
  };
  std::map<ObjectKey, Digests> digests;
  auto digests_of = [&](const std::string& kind, const std::string& ns,
                        const std::string& name) -> const Digests* {
    const ObjectKey k{kind, ns, name};
    if (auto d = digests.find(k); d != digests.end()) return &d->second;
    auto it = config.find(k);
    if (it == config.end()) return nullptr;
    Digests& d = digests[k];
    std::string all;
    const auto data = EnvData(*it->second);  // a local: the loop must not outlive it
    for (const auto& [dk, dv] : *data) {
      d.by_key[dk] = Sha256Hex(dv);
      all += Sha256Hex(dk) + d.by_key[dk];
    }
    d.whole = Sha256Hex(all);
    return &d;
  };
  for (Manifest& m : *objects) {
    Deployment* d = m.deployment();
    if (d == nullptr) continue;
    const std::string& ns = d->metadata.namespace_;
    std::set<std::string> read;  // each reference once, in a canonical order
    for (const auto& c : d->spec.template_.spec.containers) {
      for (const auto& e : c.env) {
        auto ref = EnvKeyRef(e);
        if (!ref) continue;
        const Digests* found = digests_of(ref->kind, ns, ref->name);
        std::string value = "absent-object";
        if (found != nullptr) {
          auto v = found->by_key.find(ref->key);
          value = v == found->by_key.end() ? "absent-key" : v->second;
        }
        read.insert(Json::array({c.name, e.name, ref->kind, ref->name, ref->key, value}).dump());
      }
      for (const auto& ref : EnvFromRefs(c)) {
        const Digests* found = digests_of(ref.kind, ns, ref.name);
        read.insert(Json::array({c.name, ref.prefix, ref.kind, ref.name,
                                 found != nullptr ? found->whole : "absent-object"})
                        .dump());
      }
    }
    auto& annotations = d->spec.template_.annotations;
    if (read.empty()) {
      annotations.erase(kAnnotationConfigHash);
      continue;
    }
    std::string message;
    for (const auto& r : read) message += r + "\n";
    annotations[kAnnotationConfigHash] = HmacSha256Hex(key, message).substr(0, 20);
  }
}

}  // namespace ballast::model

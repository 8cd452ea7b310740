#include "model/config_refs.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <map>
#include <set>

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

std::string HexHmac(std::string_view key, const std::string& message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len && out.size() < 20; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 15]);
  }
  return out;
}

// The bytes as hex: any bytes, even not UTF-8, go into a JSON dump.
Json BytesJson(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 15]);
  }
  return hex;
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

std::vector<std::pair<std::string, std::string>> ReferencedConfig(const PodSpec& spec) {
  std::set<std::pair<std::string, std::string>> refs;
  for (const auto& c : spec.containers) {
    for (const auto& e : c.env) {
      if (auto ref = EnvKeyRef(e)) refs.emplace(ref->kind, ref->name);
    }
    for (const auto& ref : EnvFromRefs(c)) refs.emplace(ref.kind, ref.name);
  }
  return {refs.begin(), refs.end()};
}

std::optional<std::map<std::string, std::string>> ConfigData(const Manifest& m) {
  if (const ConfigMap* cm = m.config_map()) {
    std::map<std::string, std::string> data = cm->binary_data;
    for (const auto& [k, v] : cm->data) data[k] = v;
    return data;
  }
  if (const Secret* s = m.secret()) return s->data;
  return std::nullopt;
}

void BindConfigHashes(std::vector<Manifest>* objects, std::string_view key) {
  // kind, namespace, name -> the object's data.
  std::map<ObjectKey, const Manifest*> config;
  for (const Manifest& m : *objects) {
    if (m.config_map() != nullptr || m.secret() != nullptr) config.emplace(m.key(), &m);
  }
  std::map<ObjectKey, std::map<std::string, std::string>> data_cache;
  auto data_of = [&](const std::string& kind, const std::string& ns,
                     const std::string& name) -> const std::map<std::string, std::string>* {
    const ObjectKey k{kind, ns, name};
    auto c = data_cache.find(k);
    if (c != data_cache.end()) return &c->second;
    auto it = config.find(k);
    if (it == config.end()) return nullptr;
    return &(data_cache[k] = *ConfigData(*it->second));
  };
  for (Manifest& m : *objects) {
    Deployment* d = m.deployment();
    if (d == nullptr) continue;
    const std::string& ns = d->metadata.namespace_;
    Json read = Json::array();
    for (const auto& c : d->spec.template_.spec.containers) {
      for (const auto& e : c.env) {
        auto ref = EnvKeyRef(e);
        if (!ref) continue;
        const auto* data = data_of(ref->kind, ns, ref->name);
        Json value = nullptr;
        if (data != nullptr) {
          if (auto v = data->find(ref->key); v != data->end()) value = BytesJson(v->second);
        }
        read.push_back({c.name, e.name, ref->kind, ref->name, ref->key, data != nullptr, value});
      }
      for (const auto& ref : EnvFromRefs(c)) {
        const auto* data = data_of(ref.kind, ns, ref.name);
        Json values = nullptr;
        if (data != nullptr) {
          values = Json::object();
          for (const auto& [k, v] : *data) values[BytesJson(k).get<std::string>()] = BytesJson(v);
        }
        read.push_back({c.name, ref.prefix, ref.kind, ref.name, values});
      }
    }
    auto& annotations = d->spec.template_.annotations;
    if (read.empty()) {
      annotations.erase(kAnnotationConfigHash);
    } else {
      annotations[kAnnotationConfigHash] = HexHmac(key, read.dump());
    }
  }
}

}  // namespace ballast::model

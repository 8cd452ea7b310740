#include "model/sops.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <re2/re2.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "model/base64.h"
#include "model/codec.h"
#include "model/manifest.h"
#include "model/yaml_tree.h"

namespace ballast::model {
namespace {

constexpr size_t kDataKeyBytes = 32;
constexpr size_t kTagBytes = 16;
constexpr size_t kMaxAgeStanzas = 16;
constexpr size_t kMaxDotenvMetadataKeys = 256;
constexpr size_t kMaxDotenvMetadataDepth = 8;
// sops' MACOnlyEncryptedInitialization (sops.go): hashed first when mac_only_encrypted is set.
constexpr unsigned char kMacOnlyEncryptedInit[] = {
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69};
constexpr char kHistoryRule[] = "^(apiVersion|kind|metadata)$";

// ---- The file as sops reads it: documents of ordered mappings, sequences and scalars. ----

struct NodeEntry;

struct Node {
  enum class Kind { kNull, kScalar, kMap, kSeq };
  Kind kind = Kind::kNull;
  std::string text;
  std::string tag;  // yaml-cpp's: "?" plain, "!" quoted or block, else explicit
  std::vector<NodeEntry> map;
  std::vector<Node> seq;
  const Node* Find(std::string_view key) const;
};

struct NodeEntry {
  std::string first;  // the key
  Node second;
};

const Node* Node::Find(std::string_view key) const {
  for (const auto& [k, v] : map) {
    if (k == key) return &v;
  }
  return nullptr;
}

struct Refused {
  std::string message;
};

class OrderedBuilder : public YAML::EventHandler {
 public:
  explicit OrderedBuilder(const ParseLimits& limits) : limits_(limits) {}

  std::vector<Node> TakeDocuments() { return std::move(documents_); }

  void OnDocumentStart(const YAML::Mark&) override { has_root_ = false; }
  void OnDocumentEnd() override {
    if (has_root_ && root_.kind != Node::Kind::kNull) documents_.push_back(std::move(root_));
    root_ = Node();
  }
  void OnNull(const YAML::Mark&, YAML::anchor_t anchor) override {
    NoAnchor(anchor);
    if (KeyPending()) throw Refused{"a mapping key that is null"};
    Add(Node());
  }
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {
    throw Refused{"YAML aliases are not read in a SOPS-encrypted file (sops never writes them)"};
  }
  void OnScalar(const YAML::Mark&, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    NoAnchor(anchor);
    if (KeyPending()) {
      Count();
      stack_.back().key = value;
      stack_.back().has_key = true;
      return;
    }
    Node n;
    n.kind = Node::Kind::kScalar;
    n.text = value;
    n.tag = tag;
    Add(std::move(n));
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Push(anchor, Node::Kind::kSeq);
  }
  void OnSequenceEnd() override { Pop(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Push(anchor, Node::Kind::kMap);
  }
  void OnMapEnd() override { Pop(); }

 private:
  struct Frame {
    Node node;
    std::string key;
    bool has_key = false;
  };

  void NoAnchor(YAML::anchor_t anchor) {
    if (anchor != 0) {
      throw Refused{"YAML anchors are not read in a SOPS-encrypted file (sops never writes them)"};
    }
  }
  bool KeyPending() const {
    return !stack_.empty() && stack_.back().node.kind == Node::Kind::kMap && !stack_.back().has_key;
  }
  void Count() {
    if (++nodes_ > limits_.max_nodes_per_file) throw Refused{"too many nodes"};
  }
  void Push(YAML::anchor_t anchor, Node::Kind kind) {
    NoAnchor(anchor);
    if (KeyPending()) throw Refused{"mapping keys must be scalars"};
    if (static_cast<int>(stack_.size()) >= limits_.max_depth) throw Refused{"nested too deeply"};
    Count();
    Frame f;
    f.node.kind = kind;
    stack_.push_back(std::move(f));
  }
  void Pop() {
    Node n = std::move(stack_.back().node);
    stack_.pop_back();
    Attach(std::move(n));
  }
  void Add(Node n) {
    Count();
    Attach(std::move(n));
  }
  void Attach(Node n) {
    if (stack_.empty()) {
      root_ = std::move(n);
      has_root_ = true;
      return;
    }
    Frame& top = stack_.back();
    if (top.node.kind == Node::Kind::kSeq) {
      top.node.seq.push_back(std::move(n));
      return;
    }
    top.node.map.push_back(NodeEntry{std::move(top.key), std::move(n)});
    top.key.clear();
    top.has_key = false;
  }

  const ParseLimits& limits_;
  std::vector<Node> documents_;
  std::vector<Frame> stack_;
  Node root_;
  bool has_root_ = false;
  size_t nodes_ = 0;
};

// ---- Values as sops writes them into its MAC (sops.ToBytes of what yaml.v3 decoded). ----

// Go's strconv.FormatFloat(v, 'f', -1, 64): the shortest text that reads back, never an exponent.
// Go's strconv.FormatFloat(v, 'f', -1, 64): the shortest digits that read back, written without
// an exponent (1.2345678901234568e22 is 12345678901234568000000, zeros after the digits).
std::string GoFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  if (ec != std::errc()) return "NaN";
  const std::string sci(buf, end);  // [-]d[.ddd]e[+-]xx
  const size_t e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  const int exponent = std::stoi(sci.substr(e + 1));
  const bool negative = !mantissa.empty() && mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  const int point = exponent + 1;  // digits before the decimal point
  std::string out;
  if (point <= 0) {
    out = "0." + std::string(static_cast<size_t>(-point), '0') + digits;
  } else if (static_cast<size_t>(point) >= digits.size()) {
    out = digits + std::string(static_cast<size_t>(point) - digits.size(), '0');
  } else {
    out = digits.substr(0, static_cast<size_t>(point)) + "." +
          digits.substr(static_cast<size_t>(point));
  }
  return (negative ? "-" : "") + out;
}

enum class Parsed { kOk, kSyntax, kRange };

// Go's strconv.ParseUint(s, 0, 64) (underscores already removed): 0x/0o/0b or a leading 0
// (octal), else decimal; no sign.
Parsed GoParseUint(std::string_view s, uint64_t* out) {
  int base = 10;
  if (s.size() >= 2 && s[0] == '0') {
    const char p = static_cast<char>(s[1] | 0x20);
    base = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (base != 0) {
      s.remove_prefix(2);
    } else {
      base = 8;
      s.remove_prefix(1);
    }
  } else if (s == "0") {
    *out = 0;
    return Parsed::kOk;
  }
  if (s.empty() || s[0] == '+' || s[0] == '-') return Parsed::kSyntax;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  if (end != s.data() + s.size()) return Parsed::kSyntax;
  if (ec == std::errc::result_out_of_range) return Parsed::kRange;
  return ec == std::errc() ? Parsed::kOk : Parsed::kSyntax;
}

// Go's strconv.ParseInt(s, 0, 64): an optional sign, then as GoParseUint.
Parsed GoParseInt(std::string_view s, int64_t* out) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  uint64_t value = 0;
  if (Parsed p = GoParseUint(s, &value); p != Parsed::kOk) return p;
  if (value > (negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1)) return Parsed::kRange;
  *out = negative ? static_cast<int64_t>(0 - value) : static_cast<int64_t>(value);
  return Parsed::kOk;
}

// Go's strconv.Atoi: an optional sign and decimal digits.
std::optional<int64_t> GoAtoi(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, 10);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  if (value > (negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1)) return std::nullopt;
  return negative ? static_cast<int64_t>(0 - value) : static_cast<int64_t>(value);
}

bool IsYamlStyleFloat(std::string_view s) {
  // ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
  static const RE2 re(R"(^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$)");
  return RE2::FullMatch(s, re);
}

// Go's strconv.ParseFloat on decimal text: nullopt past the largest double (Go's ErrRange);
// what is too small to represent reads as zero (Go's answer too).
std::optional<double> GoParseFloat(std::string_view s) {
  const std::string text(s);
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || text.empty()) return std::nullopt;
  if (errno == ERANGE && std::isinf(v)) return std::nullopt;
  return v;
}

bool OneOf(std::string_view s, std::initializer_list<std::string_view> options) {
  for (std::string_view o : options) {
    if (s == o) return true;
  }
  return false;
}

// A value as sops holds it: null, a boolean, an int (int64), a float or a string; a float that
// is not finite (.inf, .nan) as its text, which the MAC bytes keep apart.
struct SopsValue {
  Json value;
  std::optional<std::string> mac_bytes;  // sops.ToBytes of it; none for null (never hashed)
};

SopsValue Typed(Json v) {
  SopsValue out;
  if (v.is_boolean()) {
    out.mac_bytes = v.get<bool>() ? "True" : "False";
  } else if (v.is_number_integer()) {
    out.mac_bytes = std::to_string(v.get<int64_t>());
  } else if (v.is_number_float()) {
    out.mac_bytes = GoFloat(v.get<double>());
  } else if (v.is_string()) {
    out.mac_bytes = v.get<std::string>();
  }
  out.value = std::move(v);
  return out;
}

// An unencrypted scalar as yaml.v3 decodes it into interface{} (resolve.go; timestamps stay
// strings), which is what sops hashes and what Flux's kustomize reads: a SOPS file's values are
// typed so, not by the YAML 1.1 rules of ballast's own reader (`on` is a string here). An error
// for what sops cannot hash either (an integer in [2^63, 2^64): Go's uint64).
Result<SopsValue> UnencryptedValue(const Node& n) {
  if (n.kind == Node::Kind::kNull) return SopsValue{};
  const std::string& s = n.text;
  if (n.tag == "!" || n.tag == "tag:yaml.org,2002:str") return Typed(s);
  if (n.tag != "?") {
    return InvalidArgument("an explicit YAML tag (" + n.tag +
                           ") is not read in a SOPS-encrypted file");
  }
  if (OneOf(s, {"true", "True", "TRUE"})) return Typed(true);
  if (OneOf(s, {"false", "False", "FALSE"})) return Typed(false);
  if (OneOf(s, {"", "~", "null", "Null", "NULL"})) return SopsValue{};
  auto non_finite = [&](const char* bytes) {
    SopsValue v;
    v.value = s;
    v.mac_bytes = bytes;
    return v;
  };
  if (OneOf(s, {".nan", ".NaN", ".NAN"})) return non_finite("NaN");
  if (OneOf(s, {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"})) return non_finite("+Inf");
  if (OneOf(s, {"-.inf", "-.Inf", "-.INF"})) return non_finite("-Inf");
  const char c = s[0];
  if (c == '.') {
    if (IsYamlStyleFloat(s)) {
      if (auto v = GoParseFloat(s)) return Typed(*v);
    }
    return Typed(s);
  }
  if (c == '+' || c == '-' || (c >= '0' && c <= '9')) {
    std::string plain;
    for (char ch : s) {
      if (ch != '_') plain += ch;
    }
    int64_t i = 0;
    if (GoParseInt(plain, &i) == Parsed::kOk) return Typed(i);
    uint64_t u = 0;
    if (GoParseUint(plain, &u) == Parsed::kOk) {
      return InvalidArgument("the integer " + s +
                             " does not fit sops' int (sops cannot hash it either)");
    }
    if (IsYamlStyleFloat(plain)) {
      if (auto v = GoParseFloat(plain)) return Typed(*v);
    }
  }
  return Typed(s);
}

// ---- AES-256-GCM as sops' aes.Cipher uses it (32-byte IVs). ----

struct EvpCtx {
  EVP_CIPHER_CTX* p = EVP_CIPHER_CTX_new();
  ~EvpCtx() { EVP_CIPHER_CTX_free(p); }
};

std::optional<std::string> GcmOpen(std::string_view key, std::string_view iv, std::string_view data,
                                   std::string_view tag, std::string_view aad) {
  EvpCtx ctx;
  if (ctx.p == nullptr || key.size() != kDataKeyBytes || tag.size() != kTagBytes || iv.empty() ||
      iv.size() > 256) {
    return std::nullopt;
  }
  auto u = [](std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); };
  int len = 0;
  std::string out(data.size(), '\0');
  if (EVP_DecryptInit_ex(ctx.p, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.p, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()), nullptr) !=
          1 ||
      EVP_DecryptInit_ex(ctx.p, nullptr, nullptr, u(key), u(iv)) != 1 ||
      EVP_DecryptUpdate(ctx.p, nullptr, &len, u(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.p, reinterpret_cast<unsigned char*>(out.data()), &len, u(data),
                        static_cast<int>(data.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.p, EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag.size()),
                          const_cast<char*>(tag.data())) != 1) {
    return std::nullopt;
  }
  int tail = 0;
  if (EVP_DecryptFinal_ex(ctx.p, reinterpret_cast<unsigned char*>(out.data()) + len, &tail) != 1) {
    return std::nullopt;
  }
  return out;
}

std::string GcmSeal(std::string_view key, std::string_view iv, std::string_view plain,
                    std::string_view aad, std::string* tag) {
  EvpCtx ctx;
  auto u = [](std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); };
  std::string out(plain.size(), '\0');
  tag->assign(kTagBytes, '\0');
  int len = 0;
  int tail = 0;
  // The key is 32 bytes and the IV 32 (both ours): OpenSSL fails only without memory, and
  // then the sealed file does not open: history's readers say so.
  EVP_EncryptInit_ex(ctx.p, EVP_aes_256_gcm(), nullptr, nullptr, nullptr);
  EVP_CIPHER_CTX_ctrl(ctx.p, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()), nullptr);
  EVP_EncryptInit_ex(ctx.p, nullptr, nullptr, u(key), u(iv));
  EVP_EncryptUpdate(ctx.p, nullptr, &len, u(aad), static_cast<int>(aad.size()));
  EVP_EncryptUpdate(ctx.p, reinterpret_cast<unsigned char*>(out.data()), &len, u(plain),
                    static_cast<int>(plain.size()));
  EVP_EncryptFinal_ex(ctx.p, reinterpret_cast<unsigned char*>(out.data()) + len, &tail);
  EVP_CIPHER_CTX_ctrl(ctx.p, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes), tag->data());
  return out;
}

struct Encrypted {
  std::string data, iv, tag, type;
};

// ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]: base64 has no ',' or ']', so the fields
// split where sops' regular expression splits them.
std::optional<Encrypted> ParseEnc(std::string_view s, std::string* why) {
  constexpr std::string_view kPrefix = "ENC[AES256_GCM,data:";
  if (s.substr(0, kPrefix.size()) != kPrefix || s.empty() || s.back() != ']') {
    *why = "not a sops value (ENC[AES256_GCM,data:…,iv:…,tag:…,type:…])";
    return std::nullopt;
  }
  s.remove_prefix(kPrefix.size());
  s.remove_suffix(1);
  size_t iv = s.find(",iv:");
  size_t tag = s.find(",tag:");
  size_t type = s.find(",type:");
  if (iv == std::string_view::npos || tag == std::string_view::npos ||
      type == std::string_view::npos || !(iv < tag && tag < type)) {
    *why = "not a sops value (ENC[AES256_GCM,data:…,iv:…,tag:…,type:…])";
    return std::nullopt;
  }
  auto d = Base64Decode(s.substr(0, iv));
  auto i = Base64Decode(s.substr(iv + 4, tag - iv - 4));
  auto t = Base64Decode(s.substr(tag + 5, type - tag - 5));
  if (!d || !i || !t) {
    *why = "a sops value whose data, iv or tag is not base64";
    return std::nullopt;
  }
  return Encrypted{std::move(*d), std::move(*i), std::move(*t), std::string(s.substr(type + 6))};
}

std::string FormatEnc(const std::string& data, const std::string& iv, const std::string& tag,
                      std::string_view type) {
  return std::string("ENC[AES256_GCM,data:")
      .append(Base64Encode(data))
      .append(",iv:")
      .append(Base64Encode(iv))
      .append(",tag:")
      .append(Base64Encode(tag))
      .append(",type:")
      .append(type)
      .append("]");
}

// ---- The metadata and sops' rule for which values are encrypted. ----

struct Metadata {
  std::vector<SopsAgeStanza> age;
  std::vector<std::string> other_key_kinds;  // kms, pgp, ... that carry keys
  std::string lastmodified;                  // as sops formats it for the MAC's additional data
  std::string mac;
  std::string version;
  std::string unencrypted_suffix, encrypted_suffix;
  std::unique_ptr<RE2> unencrypted_regex, encrypted_regex;
  bool has_unencrypted_regex = false, has_encrypted_regex = false;
  bool mac_only_encrypted = false;

  // sops' rule (sops.go shouldBeEncrypted) turns on whether any key on a value's path matches
  // the file's one rule: the walks keep that as they go down, so each key is matched once
  // (a long key above many values costs its length once, not once per value).
  bool KeyMatches(std::string_view k) const {
    auto has_suffix = [&](const std::string& suffix) {
      return k.size() >= suffix.size() && k.substr(k.size() - suffix.size()) == suffix;
    };
    // Go's regexp.Match: a match anywhere in the key; an expression that does not compile
    // matches nothing.
    if (has_encrypted_regex) return encrypted_regex->ok() && RE2::PartialMatch(k, *encrypted_regex);
    if (has_unencrypted_regex) {
      return unencrypted_regex->ok() && RE2::PartialMatch(k, *unencrypted_regex);
    }
    if (!encrypted_suffix.empty()) return has_suffix(encrypted_suffix);
    return !unencrypted_suffix.empty() && has_suffix(unencrypted_suffix);
  }
  bool Encrypted(bool any_key_matches) const {
    const bool encrypting_rule = has_encrypted_regex || !encrypted_suffix.empty();
    return encrypting_rule ? any_key_matches : !any_key_matches;
  }
};

std::unique_ptr<RE2> CompileGoRegex(const std::string& pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(1 << 20);
  return std::make_unique<RE2>(pattern, options);
}

// Go's time.Parse(time.RFC3339, s).Format(time.RFC3339): fractional seconds dropped, a zero
// offset written as Z.
std::optional<std::string> NormalizeRfc3339(std::string_view s) {
  static const RE2 re(R"(^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$)");
  std::string base, zone;
  if (!RE2::FullMatch(s, re, &base, &zone)) return std::nullopt;
  if (zone == "+00:00" || zone == "-00:00") zone = "Z";
  return base + zone;
}

struct Problem {
  std::string field;
  std::string message;
};

std::optional<Problem> ReadMetadata(const Node& sops, Metadata* md) {
  if (sops.kind != Node::Kind::kMap) return Problem{"sops", "SOPS metadata must be a mapping"};
  auto str = [&](std::string_view key, std::string* out) -> std::optional<Problem> {
    const Node* n = sops.Find(key);
    if (n == nullptr || n->kind == Node::Kind::kNull) return std::nullopt;
    if (n->kind != Node::Kind::kScalar) {
      return Problem{"sops." + std::string(key), "must be a string"};
    }
    *out = n->text;
    return std::nullopt;
  };
  static constexpr std::string_view kKnown[] = {"age",
                                                "lastmodified",
                                                "mac",
                                                "version",
                                                "unencrypted_suffix",
                                                "encrypted_suffix",
                                                "unencrypted_regex",
                                                "encrypted_regex",
                                                "unencrypted_comment_regex",
                                                "encrypted_comment_regex",
                                                "mac_only_encrypted",
                                                "kms",
                                                "gcp_kms",
                                                "azure_kv",
                                                "hc_vault",
                                                "pgp",
                                                "hckms",
                                                "key_groups",
                                                "shamir_threshold"};
  for (const auto& [key, value] : sops.map) {
    bool known = false;
    for (std::string_view k : kKnown) known = known || key == k;
    if (!known) return Problem{"sops." + key, "unknown SOPS metadata field"};
    if (key == "key_groups" && !(value.kind == Node::Kind::kSeq && value.seq.empty()) &&
        value.kind != Node::Kind::kNull) {
      return Problem{"sops.key_groups",
                     "key groups (Shamir secret sharing) are not supported: ballast opens "
                     "files whose data key is wrapped for age recipients at the top level"};
    }
    if ((key == "kms" || key == "gcp_kms" || key == "azure_kv" || key == "hc_vault" ||
         key == "pgp" || key == "hckms") &&
        value.kind == Node::Kind::kSeq && !value.seq.empty()) {
      md->other_key_kinds.push_back(key);
    }
  }
  std::string comment_rule;
  std::string ignored;
  if (auto p = str("unencrypted_comment_regex", &comment_rule)) return p;
  if (auto p = str("encrypted_comment_regex", &ignored)) return p;
  if (!comment_rule.empty() || !ignored.empty()) {
    return Problem{"sops",
                   "comment rules (encrypted_comment_regex, unencrypted_comment_regex) "
                   "are not supported: ballast does not read YAML comments"};
  }
  std::string unencrypted_regex, encrypted_regex, lastmodified, mac_only;
  for (auto [key, out] : {std::pair<std::string_view, std::string*>{"lastmodified", &lastmodified},
                          {"mac", &md->mac},
                          {"version", &md->version},
                          {"unencrypted_suffix", &md->unencrypted_suffix},
                          {"encrypted_suffix", &md->encrypted_suffix},
                          {"unencrypted_regex", &unencrypted_regex},
                          {"encrypted_regex", &encrypted_regex},
                          {"mac_only_encrypted", &mac_only}}) {
    if (auto p = str(key, out)) return p;
  }
  md->mac_only_encrypted = mac_only == "true" || mac_only == "True" || mac_only == "TRUE";
  const int rules = !md->unencrypted_suffix.empty() + !md->encrypted_suffix.empty() +
                    !unencrypted_regex.empty() + !encrypted_regex.empty();
  if (rules > 1) {
    return Problem{"sops",
                   "Cannot use more than one of encrypted_suffix, unencrypted_suffix, "
                   "encrypted_regex or unencrypted_regex in the same file"};
  }
  if (rules == 0) md->unencrypted_suffix = "_unencrypted";  // sops' default
  if (!unencrypted_regex.empty()) {
    md->unencrypted_regex = CompileGoRegex(unencrypted_regex);
    md->has_unencrypted_regex = true;
  }
  if (!encrypted_regex.empty()) {
    md->encrypted_regex = CompileGoRegex(encrypted_regex);
    md->has_encrypted_regex = true;
  }
  auto normalized = NormalizeRfc3339(lastmodified);
  if (!normalized) {
    return Problem{"sops.lastmodified", "must be an RFC 3339 time, as sops writes it"};
  }
  md->lastmodified = *normalized;
  if (md->mac.empty()) return Problem{"sops.mac", "the file has no MAC; refused"};
  if (const Node* age = sops.Find("age"); age != nullptr && age->kind != Node::Kind::kNull) {
    if (age->kind != Node::Kind::kSeq) return Problem{"sops.age", "must be a list"};
    if (age->seq.size() > kMaxAgeStanzas) {
      return Problem{"sops.age", "more than " + std::to_string(kMaxAgeStanzas) +
                                     " age recipients: refused (each may cost a run of age)"};
    }
    for (size_t i = 0; i < age->seq.size(); ++i) {
      const Node& s = age->seq[i];
      const Node* r = s.Find("recipient");
      const Node* e = s.Find("enc");
      if (s.kind != Node::Kind::kMap || r == nullptr || e == nullptr ||
          r->kind != Node::Kind::kScalar || e->kind != Node::Kind::kScalar) {
        return Problem{IndexPath("sops.age", i), "an age entry has a recipient and an enc"};
      }
      md->age.push_back({r->text, e->text});
    }
  }
  if (md->age.empty()) {
    std::string others;
    for (const auto& k : md->other_key_kinds) others += (others.empty() ? "" : ", ") + k;
    return Problem{"sops.age", "the file has no age recipient" +
                                   (others.empty() ? std::string() : " (only " + others + ")") +
                                   ": ballast opens SOPS files encrypted for age"};
  }
  return std::nullopt;
}

// ---- Walking the tree: decrypting (or just hashing) every value in file order. ----

class Walker {
 public:
  Walker(const Metadata& md, std::string_view key) : md_(md), key_(key) {
    ctx_ = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx_, EVP_sha512(), nullptr);
    if (md_.mac_only_encrypted) {
      EVP_DigestUpdate(ctx_, kMacOnlyEncryptedInit, sizeof kMacOnlyEncryptedInit);
    }
  }
  ~Walker() { EVP_MD_CTX_free(ctx_); }
  Walker(const Walker&) = delete;
  Walker& operator=(const Walker&) = delete;

  // The document as JSON, values decrypted; the top-level `sops` key left out.
  std::optional<Json> Document(const Node& root, Problem* problem) {
    if (root.kind != Node::Kind::kMap) {
      *problem = {"", "a SOPS-encrypted document is a mapping"};
      return std::nullopt;
    }
    return WalkMap(root, /*top=*/true, problem);
  }

  std::string MacHex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, digest, &n);
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string hex;
    for (unsigned int i = 0; i < n; ++i) {
      hex += kHex[digest[i] >> 4];
      hex += kHex[digest[i] & 15];
    }
    return hex;
  }

 private:
  std::string Field() const {
    std::string f;
    for (const auto& k : path_) f = ChildPath(f, k);
    return f;
  }

  void Hash(std::string_view bytes) { EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()); }
  void Push(const std::string& key) {
    matched_.push_back((!matched_.empty() && matched_.back()) || md_.KeyMatches(key));
    path_.push_back(key);
  }
  void Pop() {
    path_.pop_back();
    matched_.pop_back();
  }

  // A mapping's values in file order; a document's own `sops` key (top) is not walked.
  std::optional<Json> WalkMap(const Node& n, bool top, Problem* problem) {
    Json out = Json::object();
    for (const auto& [k, v] : n.map) {
      if (top && k == "sops") continue;
      Push(k);
      auto value = Walk(v, problem);
      Pop();
      if (!value) return std::nullopt;
      out[k] = std::move(*value);
    }
    return out;
  }

  std::optional<Json> Walk(const Node& n, Problem* problem) {
    switch (n.kind) {
      case Node::Kind::kMap:
        return WalkMap(n, /*top=*/false, problem);
      case Node::Kind::kSeq: {
        Json out = Json::array();
        for (const Node& item : n.seq) {
          auto value = Walk(item, problem);
          if (!value) return std::nullopt;
          out.push_back(std::move(*value));
        }
        return out;
      }
      case Node::Kind::kNull:
        return Json(nullptr);  // sops neither decrypts nor hashes a null
      case Node::Kind::kScalar:
        break;
    }
    const bool encrypted = md_.Encrypted(!matched_.empty() && matched_.back());
    if (!encrypted) {
      auto v = UnencryptedValue(n);
      if (!v.ok()) {
        *problem = {Field(), v.status().message()};
        return std::nullopt;
      }
      if (v->mac_bytes && !md_.mac_only_encrypted) Hash(*v->mac_bytes);
      return std::move(v->value);
    }
    if (n.tag == "!" && n.text.empty()) return Json("");  // sops leaves "" as it is
    if (n.tag != "?" && n.tag != "!") {
      *problem = {Field(), "an explicit YAML tag (" + n.tag + ") on an encrypted value"};
      return std::nullopt;
    }
    std::string why;
    auto enc = ParseEnc(n.text, &why);
    if (!enc) {
      *problem = {Field(), why +
                               ": the value is not encrypted although the file's rule says it "
                               "is (edited by hand after sops encrypted it?)"};
      return std::nullopt;
    }
    std::string aad;
    for (const auto& k : path_) aad.append(k).append(":");
    auto plain = GcmOpen(key_, enc->iv, enc->data, enc->tag, aad);
    if (!plain) {
      *problem = {Field(),
                  "could not decrypt with AES-GCM: the value was changed or moved, or the file "
                  "was encrypted with another data key"};
      return std::nullopt;
    }
    // Typed as sops' aes.Cipher.Decrypt types it; hashed as sops.ToBytes writes the value back.
    const std::string& p = *plain;
    Json out;
    if (enc->type == "str" || enc->type == "bytes" || enc->type == "time") {
      if (FirstInvalidUtf8(p) != std::string::npos) {
        *problem = {Field(), "the decrypted value is not UTF-8 text"};
        return std::nullopt;
      }
      Hash(p);
      out = p;
    } else if (enc->type == "int") {
      auto v = GoAtoi(p);
      if (!v) {
        *problem = {Field(), "a value of type int that is not an integer"};
        return std::nullopt;
      }
      Hash(std::to_string(*v));
      out = *v;
    } else if (enc->type == "float") {
      auto v = GoParseFloat(p);
      if (!v) {
        *problem = {Field(), "a value of type float that is not a number"};
        return std::nullopt;
      }
      Hash(GoFloat(*v));
      out = *v;
    } else if (enc->type == "bool") {
      // strconv.ParseBool, then "True"/"False" as sops writes booleans.
      if (OneOf(p, {"1", "t", "T", "TRUE", "true", "True"})) {
        Hash("True");
        out = true;
      } else if (OneOf(p, {"0", "f", "F", "FALSE", "false", "False"})) {
        Hash("False");
        out = false;
      } else {
        *problem = {Field(), "a value of type bool that is not a boolean"};
        return std::nullopt;
      }
    } else {
      *problem = {Field(), "unknown sops value type \"" + enc->type + "\""};
      return std::nullopt;
    }
    return out;
  }

  const Metadata& md_;
  std::string_view key_;
  EVP_MD_CTX* ctx_ = nullptr;
  std::vector<std::string> path_;
  std::vector<bool> matched_;  // whether a key on path_ up to here matches the rule
};

std::optional<std::vector<Node>> ReadOrdered(std::string_view content, const ParseLimits& limits,
                                             std::string* why) {
  std::istringstream in{std::string(content)};
  OrderedBuilder builder(limits);
  try {
    YAML::Parser parser(in);
    for (size_t i = 0; i < limits.max_nodes_per_file && parser.HandleNextDocument(builder); ++i) {
    }
  } catch (const Refused& r) {
    *why = r.message;
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    *why = "YAML syntax error: " + e.msg;
    return std::nullopt;
  }
  return builder.TakeDocuments();
}

std::string Hmac256(std::string_view key, std::string_view msg) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &n);
  return std::string(reinterpret_cast<const char*>(out), n);
}

void AppendField(std::string* out, std::string_view field) {
  const uint64_t n = field.size();
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out->append(field);
}

// What history's sealing derives its IVs from (SealSops): a key of its own, derived from the
// data key, and the object's identity, so equal values in two objects of one source file seal
// differently, while the same value of the same object seals the same way again.
struct IvContext {
  std::string key;     // HMAC-SHA256(data key, label): never the data key itself
  std::string object;  // kind, namespace, name: length-prefixed
};

std::string DeterministicIv(const IvContext& ctx, std::string_view aad, std::string_view type,
                            std::string_view plain) {
  std::string msg = ctx.object;
  AppendField(&msg, aad);
  AppendField(&msg, type);
  AppendField(&msg, plain);
  return Hmac256(ctx.key, msg);  // 32 bytes: sops' IV size
}

std::string SealValue(std::string_view key, const IvContext& ctx, std::string_view plain,
                      std::string_view aad, std::string_view type) {
  std::string iv = DeterministicIv(ctx, aad, type, plain);
  std::string tag;
  std::string data = GcmSeal(key, iv, plain, aad, &tag);
  return FormatEnc(data, iv, tag, type);
}

// Encrypts the values of `doc` that `md` says are encrypted, as sops' Encrypt types them.
void SealTree(Json& v, std::vector<std::string>& path, bool matched, const Metadata& md,
              std::string_view key, const IvContext& ctx) {
  if (v.is_object()) {
    for (auto& [k, child] : v.items()) {
      path.push_back(k);
      SealTree(child, path, matched || md.KeyMatches(k), md, key, ctx);
      path.pop_back();
    }
    return;
  }
  if (v.is_array()) {
    for (auto& child : v) SealTree(child, path, matched, md, key, ctx);
    return;
  }
  if (v.is_null() || !md.Encrypted(matched)) return;
  std::string aad;
  for (const auto& k : path) aad.append(k).append(":");
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (!s.empty()) v = SealValue(key, ctx, s, aad, "str");
  } else if (v.is_boolean()) {
    v = SealValue(key, ctx, v.get<bool>() ? "True" : "False", aad, "bool");
  } else if (v.is_number_integer()) {
    v = SealValue(key, ctx, v.dump(), aad, "int");
  } else if (v.is_number_float()) {
    v = SealValue(key, ctx, GoFloat(v.get<double>()), aad, "float");
  }
}

// The recipients a SOPS document names, for an error that says which identity it needs.
std::string AgeRecipients(const Json& root) {
  std::string out;
  const Json* age = nullptr;
  if (auto it = root.find("sops"); it != root.end() && it->is_object()) {
    if (auto a = it->find("age"); a != it->end() && a->is_array()) age = &*a;
  }
  if (age != nullptr) {
    for (const Json& s : *age) {
      if (!s.is_object()) continue;
      auto r = s.find("recipient");
      if (r == s.end() || !r->is_string()) continue;
      if (!out.empty()) out += ", ";
      out += r->get<std::string>();
    }
  }
  return out.empty() ? "no age recipient" : out;
}

}  // namespace

namespace {
bool OpenTree(const std::vector<Node>& docs, size_t first, size_t count, const SopsKeyring& keyring,
              SopsOpened* out, SopsProblem* problem);

// A file's documents may each carry metadata: at most this many distinct age stanzas a file,
// so that a file of many small documents cannot make the keyring run age thousands of times.
constexpr size_t kMaxStanzasPerFile = 64;

class FileBudgetKeyring : public SopsKeyring {
 public:
  explicit FileBudgetKeyring(const SopsKeyring& inner) : inner_(inner) {}
  Result<std::string> DataKey(const std::vector<SopsAgeStanza>& stanzas) const override {
    for (const auto& s : stanzas) seen_.insert(s.enc);
    if (seen_.size() > kMaxStanzasPerFile) {
      return ResourceExhausted("this file names more than " + std::to_string(kMaxStanzasPerFile) +
                               " distinct age stanzas: refused (each may cost a run of age)");
    }
    return inner_.DataKey(stanzas);
  }

 private:
  const SopsKeyring& inner_;
  mutable std::set<std::string> seen_;
};
}  // namespace

void OpenSopsDocuments(const std::string& file, std::string_view content, const ParseLimits& limits,
                       YamlParseResult& parsed, std::vector<std::optional<SopsEnvelope>>* envelopes,
                       std::vector<Diagnostic>* diagnostics) {
  const size_t n = parsed.documents.size();
  envelopes->assign(n, std::nullopt);
  std::vector<size_t> with;
  for (size_t i = 0; i < n; ++i) {
    if (HasSopsMetadata(parsed.documents[i].root)) with.push_back(i);
  }
  if (with.empty()) return;
  std::vector<bool> drop(n, false);
  auto error = [&](size_t doc, const std::string& field, std::string message) {
    const YamlDocument& d = parsed.documents[doc];
    auto [line, column] =
        field.empty() ? std::pair<int, int>{d.line, d.column} : d.positions.Lookup(field);
    Diagnostic diag;
    // History's entries (keep_invalid) were applied: one that cannot be opened any more (the
    // identity rotated, or not given) is left out with a warning, and the reconciler starts.
    diag.severity = limits.keep_invalid ? Severity::kWarning : Severity::kError;
    diag.where = {file, line, column};
    diag.field = field;
    diag.message = std::move(message);
    diagnostics->push_back(std::move(diag));
  };
  std::vector<std::pair<size_t, size_t>> groups;
  if (with.size() == 1 && with[0] == 0) {
    groups.emplace_back(0, n);
  } else if (with.size() == n) {
    for (size_t i = 0; i < n; ++i) groups.emplace_back(i, 1);
  } else {
    size_t plain = 0;
    while (plain < n && HasSopsMetadata(parsed.documents[plain].root)) ++plain;
    error(plain, "",
          "this file mixes SOPS-encrypted and plain documents: sops encrypts a file's documents "
          "as one tree with its metadata in the first; none of them is read");
    parsed.documents.clear();
    envelopes->clear();
    return;
  }
  std::optional<FileBudgetKeyring> budget;
  if (limits.sops != nullptr) budget.emplace(*limits.sops);
  // The file is read in order once, whatever the number of its documents.
  std::optional<std::vector<Node>> docs;
  std::string unread;
  if (limits.sops != nullptr) {
    docs = ReadOrdered(content, limits, &unread);
    if (docs && docs->size() != n) {
      docs.reset();
      unread = "the file's documents could not be read again in order";
    }
  }
  for (auto [first, count] : groups) {
    if (limits.sops != nullptr && !docs) {
      error(first, "", "SOPS: " + unread);
      for (size_t i = first; i < first + count; ++i) drop[i] = true;
      continue;
    }
    if (limits.sops == nullptr) {
      error(first, "sops",
            "SOPS-encrypted (for " + AgeRecipients(parsed.documents[first].root) +
                "): give an age identity that opens it (--age-identity-file)");
      for (size_t i = first; i < first + count; ++i) drop[i] = true;
      continue;
    }
    SopsOpened opened;
    SopsProblem problem;
    if (!OpenTree(*docs, first, count, *budget, &opened, &problem)) {
      error(problem.document < n ? problem.document : first, problem.field,
            "SOPS: " + problem.message);
      for (size_t i = first; i < first + count; ++i) drop[i] = true;
      continue;
    }
    // Secrets only: their values are what every output redacts (plans, diffs, the page, history
    // views); a ConfigMap or a Deployment opened here would show them in the clear.
    bool secrets = true;
    for (size_t k = 0; k < count && secrets; ++k) {
      const Json& d = opened.documents[k];
      auto kind = d.find("kind");
      auto version = d.find("apiVersion");
      if (kind != d.end() && *kind == "Secret" && version != d.end() && *version == "v1") continue;
      secrets = false;
      error(first + k, "kind",
            "SOPS: only Secrets (v1) are opened from SOPS-encrypted files: other kinds' values "
            "would show in plans, diffs and the page. Keep secret values in a Secret and read "
            "them from it (secretKeyRef, envFrom, a secret volume)");
    }
    if (!secrets) {
      for (size_t i = first; i < first + count; ++i) drop[i] = true;
      continue;
    }
    for (size_t k = 0; k < count; ++k) {
      parsed.documents[first + k].root = std::move(opened.documents[k]);
      (*envelopes)[first + k] = opened.envelope;
    }
  }
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    if (drop[i]) continue;
    if (kept != i) {
      parsed.documents[kept] = std::move(parsed.documents[i]);
      (*envelopes)[kept] = std::move((*envelopes)[i]);
    }
    ++kept;
  }
  parsed.documents.resize(kept);
  envelopes->resize(kept);
}

bool HasSopsMetadata(const Json& root) {
  if (!root.is_object()) return false;
  auto it = root.find("sops");
  return it != root.end() && it->is_object();
}

bool OpenSops(std::string_view content, size_t first, size_t count, const SopsKeyring& keyring,
              const ParseLimits& limits, SopsOpened* out, SopsProblem* problem) {
  std::string why;
  auto docs = ReadOrdered(content, limits, &why);
  if (!docs) {
    *problem = {first, "", why};
    return false;
  }
  return OpenTree(*docs, first, count, keyring, out, problem);
}

namespace {

bool OpenTree(const std::vector<Node>& all, size_t first, size_t count, const SopsKeyring& keyring,
              SopsOpened* out, SopsProblem* problem) {
  const std::vector<Node>* docs = &all;
  std::string why;
  if (count == 0 || first + count > docs->size()) {
    *problem = {first, "", "the file's documents changed between two readings"};
    return false;
  }
  const Node* sops =
      (*docs)[first].kind == Node::Kind::kMap ? (*docs)[first].Find("sops") : nullptr;
  if (sops == nullptr) {
    *problem = {first, "sops", "no SOPS metadata"};
    return false;
  }
  Metadata md;
  if (auto p = ReadMetadata(*sops, &md)) {
    *problem = {first, p->field, p->message};
    return false;
  }
  auto key = keyring.DataKey(md.age);
  if (!key.ok()) {
    *problem = {first, "sops.age", key.status().message()};
    return false;
  }
  if (key->size() != kDataKeyBytes) {
    *problem = {first, "sops.age", "the data key is not 32 bytes"};
    return false;
  }
  Walker walker(md, *key);
  out->documents.clear();
  for (size_t i = first; i < first + count; ++i) {
    Problem p;
    auto doc = walker.Document((*docs)[i], &p);
    if (!doc) {
      *problem = {i, p.field, p.message};
      return false;
    }
    out->documents.push_back(std::move(*doc));
  }
  const std::string computed = walker.MacHex();
  auto enc = ParseEnc(md.mac, &why);
  std::optional<std::string> mac;
  if (enc && enc->type == "str") mac = GcmOpen(*key, enc->iv, enc->data, enc->tag, md.lastmodified);
  if (!mac) {
    *problem = {first, "sops.mac",
                "the MAC does not decrypt (its lastmodified or the MAC itself was changed); "
                "refused"};
    return false;
  }
  if (*mac != computed) {
    *problem = {first, "sops.mac",
                "MAC mismatch: the file's values are not the ones sops encrypted (a value "
                "changed, added, removed or reordered without the key); refused"};
    return false;
  }
  out->envelope.data_key = std::move(*key);
  out->envelope.age = std::move(md.age);
  out->envelope.lastmodified = md.lastmodified;
  out->envelope.version = md.version;
  return true;
}

}  // namespace

bool IsSopsDotenv(std::string_view content) {
  return content.rfind("sops_mac=", 0) == 0 || content.find("\nsops_mac=") != std::string::npos;
}

Result<SopsDotenv> OpenSopsDotenv(std::string_view content, const SopsKeyring& keyring) {
  // sops' dotenv store: lines split at "\n"; empty lines skipped; '#' lines are comments (never
  // hashed); KEY=VALUE with "\n" in VALUE meaning a newline; keys sops_* are the metadata,
  // flattened: sops_age__list_0__map_enc is age[0].enc.
  Node doc;
  doc.kind = Node::Kind::kMap;
  Node meta;
  meta.kind = Node::Kind::kMap;
  size_t start = 0;
  size_t line_no = 0;
  size_t metadata_keys = 0;
  while (start < content.size()) {
    size_t nl = content.find('\n', start);
    if (nl == std::string_view::npos) nl = content.size();
    std::string_view line = content.substr(start, nl - start);
    start = nl + 1;
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument("line " + std::to_string(line_no) +
                             ": not KEY=VALUE (sops' dotenv format)");
    }
    std::string key(line.substr(0, eq));
    std::string value;
    for (size_t i = eq + 1; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == 'n') {
        value += '\n';
        ++i;
      } else {
        value += line[i];
      }
    }
    Node scalar;
    scalar.kind = Node::Kind::kScalar;
    scalar.tag = "!";
    scalar.text = std::move(value);
    if (key.rfind("sops_", 0) != 0) {
      doc.map.push_back(NodeEntry{std::move(key), std::move(scalar)});
      continue;
    }
    // Unflatten: name, then __list_N / __map_K steps. sops' metadata is a few dozen entries,
    // at most a few steps deep (key_groups__list_0__map_age__list_0__map_enc): more is refused,
    // before it costs time or stack.
    if (++metadata_keys > kMaxDotenvMetadataKeys) {
      return InvalidArgument("more than " + std::to_string(kMaxDotenvMetadataKeys) +
                             " sops_ entries: not sops' metadata");
    }
    std::string rest = key.substr(5);
    std::vector<std::string> steps;
    for (size_t at = 0;;) {
      size_t sep = rest.find("__", at);
      steps.push_back(rest.substr(at, sep == std::string::npos ? std::string::npos : sep - at));
      if (sep == std::string::npos) break;
      if (steps.size() >= kMaxDotenvMetadataDepth) {
        return InvalidArgument(key.substr(0, 64) + "…: nested deeper than sops' metadata is");
      }
      at = sep + 2;
    }
    Node* node = &meta;
    for (size_t i = 0; i < steps.size(); ++i) {
      const bool last = i + 1 == steps.size();
      std::string name = steps[i];
      if (i > 0 && name.rfind("list_", 0) == 0 && node->kind != Node::Kind::kMap) {
        size_t index = 0;
        auto [p, ec] = std::from_chars(name.data() + 5, name.data() + name.size(), index);
        if (ec != std::errc() || p != name.data() + name.size() || index > node->seq.size() ||
            index >= 64) {
          return InvalidArgument(key + ": not sops' flattened metadata");
        }
        if (index == node->seq.size()) node->seq.emplace_back();
        node = &node->seq[index];
      } else {
        if (i > 0) {
          if (name.rfind("map_", 0) != 0) return InvalidArgument(key + ": not sops' metadata");
          name = name.substr(4);
        }
        if (node->kind == Node::Kind::kNull) node->kind = Node::Kind::kMap;
        if (node->kind != Node::Kind::kMap) return InvalidArgument(key + ": not sops' metadata");
        Node* child = nullptr;
        for (auto& e : node->map) {
          if (e.first == name) child = &e.second;
        }
        if (child == nullptr) {
          node->map.push_back(NodeEntry{name, Node()});
          child = &node->map.back().second;
        }
        node = child;
      }
      if (!last) {
        const std::string& next = steps[i + 1];
        if (node->kind == Node::Kind::kNull) {
          node->kind = next.rfind("list_", 0) == 0 ? Node::Kind::kSeq : Node::Kind::kMap;
        }
      }
    }
    if (node->kind != Node::Kind::kNull) return InvalidArgument(key + ": given twice");
    *node = std::move(scalar);
  }
  doc.map.push_back(NodeEntry{"sops", std::move(meta)});
  SopsOpened opened;
  SopsProblem problem;
  std::vector<Node> docs;
  docs.push_back(std::move(doc));
  if (!OpenTree(docs, 0, 1, keyring, &opened, &problem)) {
    return InvalidArgument((problem.field.empty() ? "" : problem.field + ": ") + problem.message);
  }
  SopsDotenv out;
  for (const auto& [k, v] : docs[0].map) {
    if (k == "sops") continue;
    const Json& value = opened.documents[0][k];
    out.pairs.emplace_back(k, value.is_string() ? value.get<std::string>() : value.dump());
  }
  out.envelope = std::move(opened.envelope);
  return out;
}

std::string SealSops(const Json& doc, const SopsEnvelope& envelope) {
  Metadata md;
  md.unencrypted_regex = CompileGoRegex(kHistoryRule);
  md.has_unencrypted_regex = true;
  Json sealed = doc;
  sealed.erase("sops");
  IvContext ctx;
  ctx.key = Hmac256(envelope.data_key, "ballast: history seal IVs");
  const Json meta = doc.is_object() ? doc.value("metadata", Json::object()) : Json::object();
  auto str = [](const Json& j, const char* k) {
    auto it = j.is_object() ? j.find(k) : j.end();
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  AppendField(&ctx.object, str(doc, "kind"));
  AppendField(&ctx.object, str(meta, "namespace"));
  AppendField(&ctx.object, str(meta, "name"));
  std::vector<std::string> path;
  SealTree(sealed, path, false, md, envelope.data_key, ctx);
  Json age = Json::array();
  for (const auto& s : envelope.age) age.push_back({{"recipient", s.recipient}, {"enc", s.enc}});
  sealed["sops"] = {{"age", std::move(age)},
                    {"lastmodified", envelope.lastmodified},
                    {"mac", ""},
                    {"unencrypted_regex", kHistoryRule},
                    {"version", envelope.version.empty() ? "3.9.0" : envelope.version}};
  // The MAC is over the values as a reader of the written YAML reads them: write, read back
  // in file order, hash, then write again with the MAC.
  std::string text = ToYaml(sealed);
  std::string why;
  auto docs = ReadOrdered(text, ParseLimits{}, &why);
  if (docs && docs->size() == 1) {
    Walker walker(md, envelope.data_key);
    Problem p;
    if (walker.Document((*docs)[0], &p)) {
      sealed["sops"]["mac"] =
          SealValue(envelope.data_key, ctx, walker.MacHex(), envelope.lastmodified, "str");
      text = ToYaml(sealed);
    }
  }
  return text;
}

}  // namespace ballast::model

#include "model/yaml_tree.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

namespace ballast::model {

std::string YamlCppVersion() { return BALLAST_YAML_CPP_VERSION; }

std::pair<int, int> FieldPositions::Lookup(std::string_view path) const {
  std::string p(path);
  while (true) {
    if (auto it = map_.find(p); it != map_.end()) return it->second;
    if (p.empty()) return {0, 0};
    size_t cut = p.find_last_of(".[");
    if (cut == std::string::npos) {
      p.clear();
    } else {
      p.resize(cut);
    }
  }
}

std::string ChildPath(const std::string& parent, std::string_view key) {
  bool simple = !key.empty();
  for (char c : key) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) {
      simple = false;
      break;
    }
  }
  if (!simple) return parent + "[" + std::string(key) + "]";
  if (parent.empty()) return std::string(key);
  std::string out;
  out.reserve(parent.size() + 1 + key.size());
  out += parent;
  out += '.';
  out += key;
  return out;
}

std::string IndexPath(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

namespace {

// Thrown by the builder to stop a document that exceeds a limit; caught in this file only.
struct LimitExceeded {
  std::string message;
  YAML::Mark mark;
};

bool IsOneOf(const std::string& s, std::initializer_list<const char*> options) {
  for (const char* o : options) {
    if (s == o) return true;
  }
  return false;
}

bool ParseInt(const std::string& s, Json* out) {
  std::string body = s;
  bool neg = false;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    neg = body[0] == '-';
    body = body.substr(1);
  }
  if (body.empty()) return false;
  int base = 10;
  std::string digits = body;
  if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')) {
    base = 16;
    digits = body.substr(2);
  } else if (body.size() > 2 && body[0] == '0' && body[1] == 'o') {
    base = 8;
    digits = body.substr(2);
  } else if (body.size() > 1 && body[0] == '0') {
    base = 8;  // YAML 1.1 octal, as go-yaml reads it
    digits = body.substr(1);
  }
  for (char c : digits) {
    bool ok = base == 16 ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                         : (c >= '0' && c < char('0' + base));
    if (!ok) return false;
  }
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(digits.c_str(), &end, base);
  if (errno == ERANGE) {
    *out = std::strtod(s.c_str(), nullptr);
    return true;
  }
  *out = static_cast<int64_t>(neg ? -v : v);
  return true;
}

bool ParseFloat(const std::string& s, Json* out) {
  // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  if (i != s.size()) return false;
  double d = std::strtod(s.c_str(), nullptr);
  if (!std::isfinite(d)) return false;
  *out = d;
  return true;
}

// Resolves a plain (unquoted, untagged) scalar as go-yaml v2 does.
Json ResolvePlain(const std::string& s) {
  if (IsOneOf(s, {"", "~", "null", "Null", "NULL"})) return nullptr;
  // go-yaml v2 also reads y/Y/n/N as booleans; nothing else in the Kubernetes tool chain
  // (kustomize, helm, yaml.v3) does, and `name: Y` is a real variable name: kept as strings.
  if (IsOneOf(s, {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"})) return true;
  if (IsOneOf(s, {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"})) {
    return false;
  }
  Json v;
  if (ParseInt(s, &v)) return v;
  if (ParseFloat(s, &v)) return v;
  return s;
}

}  // namespace

Json ResolveYamlScalar(const std::string& tag, const std::string& value) {
  if (tag == "?") return ResolvePlain(value);
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return value;
  if (tag == "tag:yaml.org,2002:null") return nullptr;
  if (tag == "tag:yaml.org,2002:bool" || tag == "tag:yaml.org,2002:int" ||
      tag == "tag:yaml.org,2002:float") {
    return ResolvePlain(value);
  }
  return value;  // custom tags: the text
}

namespace {

// Builds JSON from yaml-cpp's event stream, recording positions by field path, expanding
// aliases under the node budget.
class JsonBuilder : public YAML::EventHandler {
 public:
  JsonBuilder(const ParseLimits& limits, size_t* nodes_used)
      : limits_(limits), nodes_used_(nodes_used) {}

  YamlDocument TakeDocument() { return std::move(doc_); }
  bool has_root() const { return has_root_; }

  void OnDocumentStart(const YAML::Mark& mark) override { start_ = mark; }
  const YAML::Mark& start() const { return start_; }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    AddValue(mark, anchor, nullptr, 1);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) throw LimitExceeded{"unknown alias", mark};
    Count(mark, it->second.second);  // before copying: bounds alias bombs
    AddValue(mark, 0, it->second.first, 0);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    // The text was UTF-8, but yaml-cpp 0.7 reads a NUL byte in a plain scalar into bytes that
    // are not: such a value could not be written back or sent as JSON (fuzz/manifest_fuzz).
    if (FirstInvalidUtf8(value) != std::string_view::npos) {
      throw LimitExceeded{
          "a value that does not read as UTF-8 text (a NUL byte in the file?): "
          "manifests must be UTF-8 text",
          mark};
    }
    Frame* top = stack_.empty() ? nullptr : &stack_.back();
    if (top != nullptr && top->value.is_object() && !top->has_key) {
      // A mapping key.
      Count(mark, 1);
      top->key = value;
      top->key_is_merge = (tag == "?" && value == "<<");
      top->has_key = true;
      top->key_mark = mark;
      if (!top->key_is_merge && top->value.contains(value) && !top->merged_keys.count(value)) {
        throw LimitExceeded{"mapping key \"" + value + "\" already defined", mark};
      }
      return;
    }
    AddValue(mark, anchor, ResolveYamlScalar(tag, value), 1);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Push(mark, anchor, Json::array());
  }
  void OnSequenceEnd() override { Pop(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Push(mark, anchor, Json::object());
  }
  void OnMapEnd() override { Pop(); }

 private:
  struct Frame {
    Json value;
    std::string path;
    YAML::anchor_t anchor = 0;
    size_t nodes_at_start = 0;
    std::string key;
    bool has_key = false;
    bool key_is_merge = false;
    YAML::Mark key_mark;
    std::set<std::string> merged_keys;  // keys that came from `<<`; explicit keys override them
  };

  void Count(const YAML::Mark& mark, size_t n) {
    *nodes_used_ += n;
    if (*nodes_used_ > limits_.max_nodes_per_file) {
      throw LimitExceeded{"document expands to more than " +
                              std::to_string(limits_.max_nodes_per_file) +
                              " nodes (YAML alias expansion?); refused",
                          mark};
    }
  }

  // Every node's position is kept under its field path, so a file's paths are bounded in total:
  // a long key above many values (400 KB over 10,000 values: 4 GB of paths) is refused, not
  // held. Real manifests stay far below (~50 bytes a node).
  static constexpr size_t kMaxPathBytes = size_t{64} << 20;
  void Record(const std::string& path, const YAML::Mark& mark) {
    path_bytes_ += path.size();
    if (path_bytes_ > kMaxPathBytes) {
      throw LimitExceeded{"the document's field paths exceed " +
                              std::to_string(kMaxPathBytes >> 20) +
                              " MiB in total (a very long key above many values?); refused",
                          mark};
    }
    doc_.positions.Set(path, mark.line + 1, mark.column + 1);
  }

  // The path the next value will have, given the container on top of the stack.
  std::string NextPath(const YAML::Mark& mark) {
    if (stack_.empty()) return "";
    Frame& top = stack_.back();
    if (top.value.is_array()) return IndexPath(top.path, top.value.size());
    if (!top.has_key) {
      throw LimitExceeded{"mapping keys must be scalars (complex keys are not supported)", mark};
    }
    if (top.key_is_merge) return top.path;
    return ChildPath(top.path, top.key);
  }

  void Push(const YAML::Mark& mark, YAML::anchor_t anchor, Json empty) {
    if (static_cast<int>(stack_.size()) >= limits_.max_depth) {
      throw LimitExceeded{
          "nesting deeper than " + std::to_string(limits_.max_depth) + " levels; refused", mark};
    }
    Count(mark, 1);
    Frame f;
    f.path = NextPath(mark);
    f.value = std::move(empty);
    f.anchor = anchor;
    f.nodes_at_start = *nodes_used_;
    Record(f.path, mark);
    if (stack_.empty()) {
      doc_.line = mark.line + 1;
      doc_.column = mark.column + 1;
    }
    stack_.push_back(std::move(f));
  }

  void Pop() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    size_t subtree = *nodes_used_ - f.nodes_at_start + 1;
    if (f.anchor != 0) anchors_[f.anchor] = {f.value, subtree};
    Attach(std::move(f.value), YAML::Mark());
  }

  void AddValue(const YAML::Mark& mark, YAML::anchor_t anchor, Json value, size_t nodes) {
    Count(mark, nodes);
    std::string path = NextPath(mark);
    Record(path, mark);
    if (stack_.empty()) {
      doc_.line = mark.line + 1;
      doc_.column = mark.column + 1;
    }
    if (anchor != 0) anchors_[anchor] = {value, nodes};
    Attach(std::move(value), mark);
  }

  void Attach(Json value, const YAML::Mark& mark) {
    if (stack_.empty()) {
      doc_.root = std::move(value);
      has_root_ = !doc_.root.is_null();
      return;
    }
    Frame& top = stack_.back();
    if (top.value.is_array()) {
      top.value.push_back(std::move(value));
      return;
    }
    if (top.key_is_merge) {
      // `<<: *base` or `<<: [*a, *b]`: keys not already present are merged in.
      auto merge_one = [&](const Json& m) {
        if (!m.is_object()) throw LimitExceeded{"merge key value must be a mapping", mark};
        for (const auto& [k, v] : m.items()) {
          if (!top.value.contains(k)) {
            top.value[k] = v;
            top.merged_keys.insert(k);
          }
        }
      };
      if (value.is_array()) {
        for (const auto& m : value) merge_one(m);
      } else {
        merge_one(value);
      }
    } else {
      top.merged_keys.erase(top.key);
      top.value[top.key] = std::move(value);
    }
    top.has_key = false;
    top.key_is_merge = false;
  }

  const ParseLimits& limits_;
  size_t* nodes_used_;
  size_t path_bytes_ = 0;
  YamlDocument doc_;
  YAML::Mark start_ = YAML::Mark::null_mark();
  bool has_root_ = false;
  std::vector<Frame> stack_;
  std::unordered_map<YAML::anchor_t, std::pair<Json, size_t>> anchors_;
};

Diagnostic ErrorAt(std::string_view file, const YAML::Mark& mark, std::string message) {
  Diagnostic d;
  d.where = {std::string(file), mark.line >= 0 ? mark.line + 1 : 0,
             mark.column >= 0 ? mark.column + 1 : 0};
  d.message = std::move(message);
  return d;
}

}  // namespace

bool PlainScalarIsString(const std::string& s) { return ResolvePlain(s).is_string(); }

size_t FirstInvalidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if ((b & 0xE0) == 0xC0) {
      len = 2;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4;
      cp = b & 0x07;
    } else {
      return i;
    }
    if (i + len > s.size()) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

namespace {

// Parser messages may quote the offending input: control and non-ASCII bytes as \xNN, so an
// error never writes raw binary to a terminal or a log line.
std::string Printable(std::string_view text) {
  std::string out;
  for (char ch : text) {
    const auto b = static_cast<unsigned char>(ch);
    if (b >= 0x20 && b < 0x7F) {
      out.push_back(ch);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xF]);
    }
  }
  return out;
}

// A UTF-16 or UTF-32 byte order mark: yaml-cpp decodes those streams itself.
bool HasWideBom(std::string_view s) {
  auto at = [&](size_t i) { return i < s.size() ? static_cast<unsigned char>(s[i]) : 0x100u; };
  return (at(0) == 0xFF && at(1) == 0xFE) || (at(0) == 0xFE && at(1) == 0xFF) ||
         (at(0) == 0 && at(1) == 0 && at(2) == 0xFE && at(3) == 0xFF);
}

}  // namespace

YamlParseResult ParseYamlDocuments(std::string_view file, std::string_view content,
                                   const ParseLimits& limits) {
  YamlParseResult result;
  if (size_t bad = HasWideBom(content) ? std::string_view::npos : FirstInvalidUtf8(content);
      bad != std::string_view::npos) {
    YAML::Mark mark;
    mark.line = 0;
    size_t line_start = 0;
    for (size_t i = 0; i < bad; ++i) {
      if (content[i] == '\n') {
        ++mark.line;
        line_start = i + 1;
      }
    }
    mark.column = static_cast<int>(bad - line_start);
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(content[bad]));
    result.errors.push_back(ErrorAt(
        file, mark,
        std::string("not UTF-8 text (byte ") + byte + "): manifests must be UTF-8 encoded YAML"));
    return result;
  }
  std::istringstream in{std::string(content)};
  size_t nodes_used = 0;
  try {
    YAML::Parser parser(in);
    int previous_start = -1;
    while (true) {
      JsonBuilder builder(limits, &nodes_used);
      if (!parser.HandleNextDocument(builder)) break;
      // yaml-cpp 0.7 can return the same empty document again and again without reading on
      // (a stray ',' at the top level, found by fuzz/manifest_fuzz): a document that starts
      // where the last one did is a syntax error there, not a million empty documents.
      if (builder.start().pos >= 0 && builder.start().pos == previous_start) {
        throw YAML::ParserException(builder.start(),
                                    "unexpected character; the parser cannot "
                                    "read on from here");
      }
      previous_start = builder.start().pos;
      if (builder.has_root()) result.documents.push_back(builder.TakeDocument());
    }
  } catch (const LimitExceeded& e) {
    result.errors.push_back(ErrorAt(file, e.mark, e.message));
  } catch (const YAML::Exception& e) {
    result.errors.push_back(ErrorAt(file, e.mark, "YAML syntax error: " + Printable(e.msg)));
  }
  return result;
}

}  // namespace ballast::model

#pragma once

// SOPS-encrypted manifests (getsops/sops, YAML or JSON files), opened as Flux opens them: the
// file's data key is unwrapped by someone who holds an age identity (a SopsKeyring; the
// reconciler's runs Debian's `age`, sources/sops/age_keyring.h), then every value is decrypted
// with AES-256-GCM under its path and the file's MAC is checked, so a value changed, moved,
// added or removed by anyone without the key is refused. Pure: OpenSSL does the cipher and the
// hashes, RE2 the (Go syntax) encrypted_regex rules; nothing here reads a file or a clock.
//
// The rules are sops' own (sops.go, aes/cipher.go, stores/yaml): values are walked in file order,
// a value is encrypted unless the metadata's rule (unencrypted_suffix, the default
// "_unencrypted"; encrypted_suffix; encrypted_regex; unencrypted_regex) says otherwise for one of
// the keys on its path; the additional data of a value is its path's keys joined by ':' plus a
// final ':'; the MAC is SHA-512 over every value as sops' ToBytes writes it (the unencrypted too,
// read as yaml.v3 reads them, unless mac_only_encrypted), upper-case hex, itself encrypted with
// the RFC 3339 `lastmodified` as additional data.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/object.h"
#include "model/status.h"

namespace ballast::model {

struct Diagnostic;
struct ParseLimits;
struct YamlParseResult;

// Unwraps a file's data key. Implementations are thread-safe (files are parsed in parallel).
class SopsKeyring {
 public:
  virtual ~SopsKeyring() = default;
  // The 32-byte data key from one of `stanzas`, or an error that says which recipients the
  // file was encrypted to and why none could be opened.
  virtual Result<std::string> DataKey(const std::vector<SopsAgeStanza>& stanzas) const = 0;
};

// One SOPS document (or multi-document file), opened.
struct SopsOpened {
  std::vector<Json> documents;  // decrypted, the `sops` key removed; in file order
  SopsEnvelope envelope;
};

// Where and why a file could not be opened: `document` is the index of the non-empty document,
// `field` the path of the value ("stringData.password", "sops.mac", "" for the whole file).
struct SopsProblem {
  size_t document = 0;
  std::string field;
  std::string message;
};

// True when `root` (a document's root) carries SOPS metadata: a top-level `sops` mapping.
bool HasSopsMetadata(const Json& root);

// Opens the non-empty documents [first, first + count) of `content` as one SOPS tree whose
// metadata is in its first document (sops keeps a multi-document file's metadata in the first
// and MACs all of them). `content` already parsed under `limits` (ParseYamlDocuments), so its
// size and depth are bounded; anchors and aliases are refused here (sops never writes them).
// Values keep their types: strings, integers, floats, booleans.
bool OpenSops(std::string_view content, size_t first, size_t count, const SopsKeyring& keyring,
              const ParseLimits& limits, SopsOpened* out, SopsProblem* problem);

// A dotenv file sops encrypted (`KEY=ENC[...]` lines, the metadata flattened into `sops_*`
// keys: sops' dotenv store), as Flux opens one behind a secretGenerator's `envs`: its pairs in
// file order, decrypted, MAC checked. An error names the key (or "sops_mac") and why.
struct SopsDotenv {
  std::vector<std::pair<std::string, std::string>> pairs;
  SopsEnvelope envelope;
};
bool IsSopsDotenv(std::string_view content);  // it has a `sops_mac=` line
Result<SopsDotenv> OpenSopsDotenv(std::string_view content, const SopsKeyring& keyring);

// Internal to model/ (manifest.cc, kustomize.cc): replaces the SOPS-encrypted documents of
// `parsed` (`content` of `file`) by what they hold: the file as one tree when only its first
// document carries the metadata (sops' multi-document files), else each document alone (files
// concatenated from several). A document that cannot be opened is dropped with an error at it
// (in `diagnostics`); `envelopes[i]` is set for each opened document of the result.
void OpenSopsDocuments(const std::string& file, std::string_view content, const ParseLimits& limits,
                       YamlParseResult& parsed, std::vector<std::optional<SopsEnvelope>>* envelopes,
                       std::vector<Diagnostic>* diagnostics);

// `doc` (a normalized object, model::ToJson) as a SOPS YAML file under `envelope`: every value
// encrypted but apiVersion, kind and metadata (unencrypted_regex ^(apiVersion|kind|metadata)$),
// the same age stanzas (so whoever opened the source opens this), a MAC over every value.
// Deterministic: each IV is an HMAC of the value under the data key, so an unchanged value encrypts
// to the same text and history diffs show only what changed. What history stores of an object that
// came from a SOPS file.
std::string SealSops(const Json& doc, const SopsEnvelope& envelope);

}  // namespace ballast::model

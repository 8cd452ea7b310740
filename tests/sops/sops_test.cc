// SOPS files that real sops wrote (Flux's kustomize-controller test data, tests/sops/fixtures),
// opened with Debian's `age` and the identities published beside them; tampered copies refused.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "model/base64.h"
#include "model/codec.h"
#include "model/kustomize.h"
#include "model/manifest.h"
#include "model/sops.h"
#include "sources/sops/age_keyring.h"
#include "tests/support/git_servers.h"

namespace ballast::sops {
namespace {

namespace fs = std::filesystem;
using git::testing::TempDir;
using model::Json;

const fs::path kFixtures = fs::path(BALLAST_SOURCE_DIR) / "tests/sops/fixtures";

std::string ReadFixture(const std::string& name) {
  std::ifstream in(kFixtures / name, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// An identity file as users keep one: a private copy (git does not keep the 0600 mode).
std::string PrivateCopy(const TempDir& dir, const std::string& name, mode_t mode = 0600) {
  const std::string path = dir / name;
  std::ofstream(path) << ReadFixture(name);
  ::chmod(path.c_str(), mode);
  return path;
}

std::unique_ptr<AgeKeyring> Ring(const TempDir& dir, const std::string& name) {
  auto ring = AgeKeyring::Open(PrivateCopy(dir, name));
  EXPECT_TRUE(ring.ok()) << ring.status().ToString();
  return ring.ok() ? std::move(*ring) : nullptr;
}

model::FileParseResult Parse(const std::string& file, const std::string& content,
                             const model::SopsKeyring* ring) {
  model::ParseLimits limits;
  limits.sops = ring;
  return model::ParseManifestFile(file, content, limits);
}

// A kustomize reader over files held in memory.
model::KustomizeReader ReaderOf(const std::map<std::string, std::string>& files) {
  return [&files](const std::string& p) -> Result<std::optional<std::string>> {
    auto it = files.find(p);
    if (it == files.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  };
}

// The one Secret a rendering gave, or null (the test says why).
const model::Secret* OnlySecret(const model::ManifestSet& set) {
  EXPECT_EQ(set.manifests.size(), 1u)
      << (set.diagnostics.empty() ? "" : set.diagnostics[0].ToString());
  return set.manifests.size() == 1 ? set.manifests[0].secret() : nullptr;
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

std::string OnlyError(const model::FileParseResult& r) {
  EXPECT_TRUE(r.manifests.empty());
  EXPECT_EQ(r.diagnostics.size(), 1u);
  return r.diagnostics.empty() ? "" : r.diagnostics[0].ToString();
}

// ---- Files written here by sops' algorithm (aes/cipher.go, sops.go), independently of
// model/sops.cc: the data key of age.yaml, random IVs, the MAC over the bytes the table says. ----

std::string Gcm(const std::string& key, const std::string& plain, const std::string& aad,
                const std::string& type) {
  unsigned char iv[32];
  RAND_bytes(iv, sizeof iv);
  std::string out(plain.size(), '\0');
  unsigned char tag[16];
  int len = 0;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 32, nullptr);
  EVP_EncryptInit_ex(ctx, nullptr, nullptr, reinterpret_cast<const unsigned char*>(key.data()), iv);
  EVP_EncryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                    static_cast<int>(aad.size()));
  EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                    reinterpret_cast<const unsigned char*>(plain.data()),
                    static_cast<int>(plain.size()));
  EVP_EncryptFinal_ex(ctx, nullptr, &len);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag);
  EVP_CIPHER_CTX_free(ctx);
  return "ENC[AES256_GCM,data:" + model::Base64Encode(out) +
         ",iv:" + model::Base64Encode(std::string(reinterpret_cast<char*>(iv), 32)) +
         ",tag:" + model::Base64Encode(std::string(reinterpret_cast<char*>(tag), 16)) +
         ",type:" + type + "]";
}

struct Crafted {
  model::SopsEnvelope envelope;  // age.yaml's data key and stanza
  // A Secret whose annotation `a` is `text` (unencrypted) and whose data.k is encrypted; its MAC
  // over `mac_bytes` in file order.
  std::string File(const std::string& text, const std::vector<std::string>& mac_bytes) const {
    std::string hash_input;
    for (const auto& b : mac_bytes) hash_input += b;
    unsigned char digest[64];
    SHA512(reinterpret_cast<const unsigned char*>(hash_input.data()), hash_input.size(), digest);
    std::string hex;
    for (unsigned char c : digest) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      hex += kHex[c >> 4];
      hex += kHex[c & 15];
    }
    std::string enc_lines;
    std::istringstream lines(envelope.age[0].enc);
    for (std::string line; std::getline(lines, line);) enc_lines += "        " + line + "\n";
    return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: typed\n  annotations:\n    a: " +
           text + "\ndata:\n  k: " + Gcm(envelope.data_key, "czNjcmV0", "data:k:", "str") +
           "\nsops:\n  age:\n    - recipient: " + envelope.age[0].recipient + "\n      enc: |\n" +
           enc_lines + "  lastmodified: \"2024-11-12T13:33:42Z\"\n  mac: " +
           Gcm(envelope.data_key, hex, "2024-11-12T13:33:42Z", "str") +
           "\n  encrypted_regex: ^(data|stringData)$\n  version: 3.9.0\n";
  }
};

Crafted CraftWith(const AgeKeyring& ring) {
  model::SopsOpened opened;
  model::SopsProblem problem;
  EXPECT_TRUE(model::OpenSops(ReadFixture("age.yaml"), 0, 1, ring, model::ParseLimits{}, &opened,
                              &problem));
  return Crafted{opened.envelope};
}

TEST(SopsFiles, WhatRealSopsWroteOpensWithTheRightIdentity) {
  TempDir dir;
  auto ring = Ring(dir, "age.txt");
  auto global = Ring(dir, "age-global.txt");
  ASSERT_TRUE(ring && global);
  EXPECT_EQ(
      ring->recipients(),
      std::vector<std::string>{"age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29"});
  struct Case {
    std::string file;
    const AgeKeyring* ring;
    std::string name, key, value;
  } cases[] = {{"age.yaml", ring.get(), "age", "key", "value"},
               {"merge2.yaml", ring.get(), "secret", "merge2", "merge2"},
               {"global.yaml", global.get(), "global-age-secret", "key", "global-value"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    auto r = Parse(c.file, ReadFixture(c.file), c.ring);
    ASSERT_EQ(r.manifests.size(), 1u);
    EXPECT_TRUE(r.diagnostics.empty()) << r.diagnostics[0].ToString();
    const model::Secret* s = r.manifests[0].secret();
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->metadata.name, c.name);
    EXPECT_EQ(s->data, (std::map<std::string, std::string>{{c.key, c.value}}));
    ASSERT_TRUE(r.manifests[0].sops.has_value());
    EXPECT_EQ(r.manifests[0].sops->data_key.size(), 32u);
  }
}

TEST(SopsFiles, TheDefaultRuleEncryptsEveryValueOfAJsonFile) {
  // Written by sops 3.9 without a rule: unencrypted_suffix "_unencrypted", every value encrypted.
  TempDir dir;
  auto ring = Ring(dir, "age.txt");
  ASSERT_TRUE(ring);
  model::SopsOpened opened;
  model::SopsProblem problem;
  ASSERT_TRUE(model::OpenSops(ReadFixture("inside.json"), 0, 1, *ring, model::ParseLimits{},
                              &opened, &problem))
      << problem.field << ": " << problem.message;
  EXPECT_EQ(opened.documents[0], Json({{"data", "value"}}));
}

TEST(SopsFiles, ATamperedFileIsRefusedAtWhatWasChanged) {
  TempDir dir;
  auto ring = Ring(dir, "age.txt");
  ASSERT_TRUE(ring);
  const std::string good = ReadFixture("age.yaml");
  // An unencrypted value is in the MAC: renaming the Secret is refused.
  EXPECT_EQ(OnlyError(Parse("s.yaml", Replace(good, "name: age", "name: other"), ring.get())),
            "s.yaml:23:8: error: SOPS: MAC mismatch: the file's values are not the ones sops "
            "encrypted (a value changed, added, removed or reordered without the key); refused "
            "(sops.mac)");
  // A value's ciphertext changed.
  EXPECT_EQ(OnlyError(Parse("s.yaml", Replace(good, "data:mHeXsmQ=", "data:nHeXsmQ="), ring.get())),
            "s.yaml:6:8: error: SOPS: could not decrypt with AES-GCM: the value was changed or "
            "moved, or the file was encrypted with another data key (stringData.key)");
  // A value moved to another key: its path is its additional data.
  EXPECT_NE(OnlyError(Parse("s.yaml", Replace(good, "  key: ENC", "  other: ENC"), ring.get()))
                .find("could not decrypt with AES-GCM: the value was changed or moved, or the file "
                      "was encrypted with another data key (stringData.other)"),
            std::string::npos);
  // A plain value added where the rule wants encrypted ones.
  EXPECT_NE(
      OnlyError(Parse("s.yaml", Replace(good, "stringData:\n", "stringData:\n  injected: hello\n"),
                      ring.get()))
          .find("SOPS: not a sops value (ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]): the value is "
                "not encrypted although the file's rule says it is (edited by hand after sops "
                "encrypted it?) (stringData.injected)"),
      std::string::npos);
  // A label added (unencrypted, outside the rule) changes the MAC.
  EXPECT_NE(
      OnlyError(Parse("s.yaml", Replace(good, "  name: age\n", "  name: age\n  labels: {a: b}\n"),
                      ring.get()))
          .find("MAC mismatch"),
      std::string::npos);
  // lastmodified is the MAC's additional data.
  EXPECT_NE(OnlyError(Parse("s.yaml", Replace(good, "13:33:42Z", "13:33:43Z"), ring.get()))
                .find("SOPS: the MAC does not decrypt"),
            std::string::npos);
  // No MAC at all.
  std::string no_mac = good;
  no_mac.erase(no_mac.find("  mac: "), no_mac.find("  pgp:") - no_mac.find("  mac: "));
  EXPECT_NE(OnlyError(Parse("s.yaml", no_mac, ring.get())).find("the file has no MAC; refused"),
            std::string::npos);
}

TEST(SopsFiles, WithoutTheIdentityTheErrorNamesWhatOpensTheFile) {
  TempDir dir;
  auto ring = Ring(dir, "age.txt");
  ASSERT_TRUE(ring);
  const std::string global = ReadFixture("global.yaml");
  EXPECT_EQ(OnlyError(Parse("g.yaml", global, nullptr)),
            "g.yaml:10:3: error: SOPS-encrypted (for "
            "age1henwn645drkd3fa34t27t2w2x0nsgw3w4h62gmg5x5xflyjpy38s5cncph): give an age "
            "identity that opens it (--age-identity-file) (sops)");
  std::string wrong = OnlyError(Parse("g.yaml", global, ring.get()));
  EXPECT_NE(wrong.find("g.yaml:11:5: error: SOPS: encrypted for "
                       "age1henwn645drkd3fa34t27t2w2x0nsgw3w4h62gmg5x5xflyjpy38s5cncph; the "
                       "identity file"),
            std::string::npos)
      << wrong;
  EXPECT_NE(wrong.find("holds age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29 only"),
            std::string::npos);
  // The stanza names our recipient but wraps someone else's key: age itself says no.
  std::string swapped =
      Replace(global, "age1henwn645drkd3fa34t27t2w2x0nsgw3w4h62gmg5x5xflyjpy38s5cncph",
              "age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29");
  EXPECT_NE(OnlyError(Parse("g.yaml", swapped, ring.get())).find("age could not open the data key"),
            std::string::npos);
}

TEST(SopsFiles, HistorySealsAnOpenedObjectAgainForTheSameRecipients) {
  TempDir dir;
  auto ring = Ring(dir, "age.txt");
  ASSERT_TRUE(ring);
  auto r = Parse("age.yaml", ReadFixture("age.yaml"), ring.get());
  ASSERT_EQ(r.manifests.size(), 1u);
  const model::Manifest& m = r.manifests[0];
  const std::string sealed = model::SealSops(model::ToJson(m), *m.sops);
  // Neither the value nor its base64 is in the sealed text; the same input seals the same way.
  EXPECT_EQ(sealed.find("value"), std::string::npos) << sealed;
  EXPECT_EQ(sealed.find("dmFsdWU="), std::string::npos) << sealed;
  EXPECT_EQ(sealed, model::SealSops(model::ToJson(m), *m.sops));
  auto back = Parse("objects/Secret/default/age.yaml", sealed, ring.get());
  ASSERT_EQ(back.manifests.size(), 1u)
      << (back.diagnostics.empty() ? "" : back.diagnostics[0].ToString());
  EXPECT_EQ(model::ToJson(back.manifests[0]), model::ToJson(m));
  EXPECT_EQ(back.manifests[0].sops, m.sops);
  // Sealed text is a sops file like any other: tampering with it is refused too.
  EXPECT_NE(OnlyError(Parse("h.yaml", Replace(sealed, "name: age", "name: agf"), ring.get()))
                .find("MAC mismatch"),
            std::string::npos);
  // Integers, booleans and floats keep their types through a seal.
  model::SopsEnvelope envelope = *m.sops;
  Json doc = {{"apiVersion", "v1"},
              {"kind", "Thing"},
              {"metadata", {{"name", "t"}}},
              {"spec", {{"n", 42}, {"on", true}, {"ratio", 0.25}, {"list", {"a", "", nullptr}}}}};
  const std::string typed = model::SealSops(doc, envelope);
  model::SopsOpened opened;
  model::SopsProblem problem;
  ASSERT_TRUE(model::OpenSops(typed, 0, 1, *ring, model::ParseLimits{}, &opened, &problem))
      << problem.field << ": " << problem.message << "\n"
      << typed;
  EXPECT_EQ(opened.documents[0], doc);
}

// Flux's order: a SOPS resource of a kustomization is opened as the file real sops wrote, then
// kustomize renames and labels it (its MAC covers the name: opened after, it would not match).
TEST(SopsFiles, AKustomizationRendersWhatItsSopsResourceHolds) {
  TempDir dir;
  auto ring = Ring(dir, "age.txt");
  ASSERT_TRUE(ring);
  std::map<std::string, std::string> files = {
      {"app/kustomization.yaml",
       "resources: [secret.enc.yaml]\nnamePrefix: prod-\nnamespace: shop\n"
       "commonLabels: {team: a}\n"},
      {"app/secret.enc.yaml", ReadFixture("merge2.yaml")}};
  const model::KustomizeReader reader = ReaderOf(files);
  model::ParseLimits limits;
  limits.sops = ring.get();
  auto set = model::RenderKustomization("app", reader, "", limits);
  const model::Secret* s = OnlySecret(set);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->metadata.name, "prod-secret");
  EXPECT_EQ(s->metadata.namespace_, "shop");
  EXPECT_EQ(s->metadata.labels.at("team"), "a");
  EXPECT_EQ(s->data.at("merge2"), "merge2");
  EXPECT_TRUE(set.manifests[0].sops.has_value());
  // Without the identity the resource is an error at its file; the rest of the tree renders.
  auto closed = model::RenderKustomization("app", reader, "", model::ParseLimits{});
  ASSERT_FALSE(closed.diagnostics.empty());
  EXPECT_EQ(closed.diagnostics[0].where.file, "app/secret.enc.yaml");
  EXPECT_TRUE(closed.manifests.empty());
}

// Unencrypted values are hashed as yaml.v3 reads them (sops' own reader) and typed so; the
// bytes column is what sops.ToBytes writes for each (from Go's resolve.go and strconv).
TEST(SopsFiles, UnencryptedValuesAreReadAsSopsReadsThem) {
  TempDir dir;
  auto ring = Ring(dir, "age.txt");
  ASSERT_TRUE(ring);
  const Crafted craft = CraftWith(*ring);
  struct Case {
    std::string text;
    std::optional<std::string> bytes;  // none: null, not hashed
    Json value;
  } cases[] = {
      {"1_000", "1000", 1000},
      {"0o17", "15", 15},
      {"010", "8", 8},
      {"0x1F", "31", 31},
      {"-0b11", "-3", -3},
      {"09", "9", 9.0},
      {".5", "0.5", 0.5},
      {"1e3", "1000", 1000.0},
      {"1e-400", "0", 0.0},
      {"12345678901234567890123", "12345678901234568000000", 1.2345678901234568e22},
      {"0xFFFFFFFFFFFFFFFFFF", "0xFFFFFFFFFFFFFFFFFF", "0xFFFFFFFFFFFFFFFFFF"},
      {"yes", "yes", "yes"},
      {"on", "on", "on"},
      {"True", "True", true},
      {"~", std::nullopt, nullptr},
      {"2001-12-14", "2001-12-14", "2001-12-14"},
      {".inf", "+Inf", ".inf"},
      {"'it''s'", "it's", "it's"},
      {"\"12\"", "12", "12"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    std::vector<std::string> bytes = {"v1", "Secret", "typed"};
    if (c.bytes) bytes.push_back(*c.bytes);
    bytes.push_back("czNjcmV0");
    model::SopsOpened opened;
    model::SopsProblem problem;
    ASSERT_TRUE(model::OpenSops(craft.File(c.text, bytes), 0, 1, *ring, model::ParseLimits{},
                                &opened, &problem))
        << problem.field << ": " << problem.message;
    EXPECT_EQ(opened.documents[0]["metadata"]["annotations"]["a"], c.value);
    EXPECT_EQ(opened.documents[0]["data"]["k"], "czNjcmV0");
  }
  // What sops cannot hash (Go's uint64) is refused as sops refuses it.
  model::SopsOpened opened;
  model::SopsProblem problem;
  EXPECT_FALSE(model::OpenSops(craft.File("9223372036854775808", {"v1"}), 0, 1, *ring,
                               model::ParseLimits{}, &opened, &problem));
  EXPECT_EQ(problem.field, "metadata.annotations.a");
  EXPECT_NE(problem.message.find("does not fit sops' int"), std::string::npos);
}

// Someone who can push writes what makes the opener work hardest: every case is refused (or
// opened) in bounded work. Before the fixes a 0.5 MB file of the wider kind took 17.6 s (and
// 3.9 GB in the plain reader alone), and 1,000 documents 106 s (the attacker review).
TEST(SopsFiles, HostileFilesAreBoundedWork) {
  TempDir dir;
  auto ring = Ring(dir, "age.txt");
  ASSERT_TRUE(ring);
  const std::string good = ReadFixture("age.yaml");
  const std::string meta = good.substr(good.find("sops:\n"));
  // A long key above 10,000 values, under the file's own regular expression: each key is
  // matched once, not once per value below it.
  auto wide = [&](size_t key_bytes) {
    std::string w = "apiVersion: v1\nkind: Secret\nmetadata: {name: age}\n? " +
                    std::string(key_bytes, 'k') + "\n:\n";
    for (int i = 0; i < 10000; ++i) w += "  v" + std::to_string(i) + ": x\n";
    return w + meta;
  };
  std::string err = OnlyError(Parse("wide.yaml", wide(4000), ring.get()));
  EXPECT_NE(err.find("MAC mismatch"), std::string::npos) << err;
  // 400,000 characters: every reader of manifests refuses what its field paths would hold (4 GB).
  err = OnlyError(Parse("wider.yaml", wide(400000), ring.get()));
  EXPECT_NE(err.find("the document's field paths exceed 64 MiB in total"), std::string::npos)
      << err;
  // 1,000 documents, each with its own metadata (one key, so age runs once): all open.
  std::string many;
  for (int i = 0; i < 1000; ++i) many += "---\n" + good;
  auto r = Parse("many.yaml", many, ring.get());
  EXPECT_EQ(r.manifests.size(), 1000u);
  EXPECT_TRUE(r.diagnostics.empty());
  // More age stanzas than any team has recipients: refused before age runs.
  std::string stanzas = "  age:\n";
  for (int i = 0; i < 17; ++i) {
    stanzas +=
        "    - recipient: age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29\n"
        "      enc: junk" +
        std::to_string(i) + "\n";
  }
  std::string crowded = good;
  crowded.replace(crowded.find("  age:\n"),
                  crowded.find("  lastmodified:") - crowded.find("  age:\n"), stanzas);
  EXPECT_NE(
      OnlyError(Parse("crowded.yaml", crowded, ring.get())).find("more than 16 age recipients"),
      std::string::npos);
  // Many documents, each with a stanza of its own: at most 64 distinct stanzas a file.
  std::string junk;
  for (int i = 0; i < 70; ++i) {
    std::string doc = good;
    const size_t begin = doc.find("      enc: |");
    doc.replace(begin, doc.find("  lastmodified:") - begin,
                "      enc: junk" + std::to_string(i) + "\n");
    junk += "---\n" + doc;
  }
  auto flood = Parse("flood.yaml", junk, ring.get());
  EXPECT_TRUE(flood.manifests.empty());
  ASSERT_EQ(flood.diagnostics.size(), 70u);
  EXPECT_NE(flood.diagnostics.back().message.find("more than 64 distinct age stanzas"),
            std::string::npos)
      << flood.diagnostics.back().ToString();
}

// Only Secrets are opened: another kind's values would be shown in plans, diffs and the page.
// Encrypted patches and generator sources are refused, not applied as ciphertext.
TEST(SopsFiles, WhatWouldShowItsValuesIsRefused) {
  TempDir dir;
  auto ring = Ring(dir, "age.txt");
  ASSERT_TRUE(ring);
  auto secret = Parse("age.yaml", ReadFixture("age.yaml"), ring.get());
  ASSERT_EQ(secret.manifests.size(), 1u);
  const Json config = {{"apiVersion", "v1"},
                       {"kind", "ConfigMap"},
                       {"metadata", {{"name", "cm"}}},
                       {"data", {{"db_password", "hunter2"}}}};
  const std::string sealed = model::SealSops(config, *secret.manifests[0].sops);
  std::string err = OnlyError(Parse("cm.yaml", sealed, ring.get()));
  EXPECT_NE(err.find("only Secrets (v1) are opened from SOPS-encrypted files"), std::string::npos)
      << err;
  EXPECT_EQ(err.find("hunter2"), std::string::npos);

  std::map<std::string, std::string> files = {
      {"app/kustomization.yaml", "resources: [secret.yaml]\npatches: [{path: merge2.yaml}]\n"},
      {"app/secret.yaml", ReadFixture("age.yaml")},
      {"app/merge2.yaml", ReadFixture("merge2.yaml")},
      {"gen/kustomization.yaml", "secretGenerator: [{name: s, envs: [secret.env]}]\n"},
      {"gen/secret.env", "PASSWORD=ENC[AES256_GCM,data:abc=,iv:abc=,tag:abc=,type:str]\n"}};
  const model::KustomizeReader reader = ReaderOf(files);
  model::ParseLimits limits;
  limits.sops = ring.get();
  auto patched = model::RenderKustomization("app", reader, "", limits);
  ASSERT_FALSE(patched.diagnostics.empty());
  EXPECT_NE(patched.diagnostics[0].message.find("the patch is SOPS-encrypted"), std::string::npos)
      << patched.diagnostics[0].ToString();
  // A JSON 6902 patch could copy a value into an annotation, or turn the Secret into a kind
  // whose values are shown: none applies to an opened Secret.
  auto global = Ring(dir, "age-global.txt");
  ASSERT_TRUE(global);
  files["leak/kustomization.yaml"] =
      "resources: [secret.yaml]\npatches:\n- target: {kind: Secret, name: global-age-secret}\n"
      "  patch: '[{\"op\": \"copy\", \"from\": \"/stringData/key\", "
      "\"path\": \"/metadata/annotations/leak\"}]'\n";
  files["leak/secret.yaml"] = ReadFixture("global.yaml");
  model::ParseLimits global_limits;
  global_limits.sops = global.get();
  auto leak = model::RenderKustomization("leak", reader, "", global_limits);
  ASSERT_FALSE(leak.diagnostics.empty());
  EXPECT_NE(leak.diagnostics[0].message.find("a JSON 6902 patch cannot apply to Secret"),
            std::string::npos)
      << leak.diagnostics[0].ToString();
  EXPECT_FALSE(leak.ok());  // the revision is refused whole
  for (const auto& m : leak.manifests) {
    EXPECT_EQ(model::ToJson(m).dump().find("leak"), std::string::npos);
  }
  for (const auto& d : leak.diagnostics) {
    EXPECT_EQ(d.ToString().find("global-value"), std::string::npos) << d.ToString();
  }
  auto generated = model::RenderKustomization("gen", reader, "", limits);
  ASSERT_FALSE(generated.diagnostics.empty());
  EXPECT_NE(generated.diagnostics[0].message.find("is SOPS-encrypted"), std::string::npos)
      << generated.diagnostics[0].ToString();
  EXPECT_TRUE(generated.manifests.empty());
}

// serve parses a large commit's files on several threads, all through one keyring.
TEST(SopsFiles, OneKeyringServesParsersOnSeveralThreads) {
  TempDir dir;
  auto ring = Ring(dir, "age.txt");
  auto global = Ring(dir, "age-global.txt");
  ASSERT_TRUE(ring && global);
  const std::string files[] = {ReadFixture("age.yaml"), ReadFixture("merge2.yaml"),
                               ReadFixture("global.yaml")};
  std::atomic<int> opened{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 15; ++i) {
        const int which = (t + i) % 3;
        auto r = Parse("f.yaml", files[which], which == 2 ? global.get() : ring.get());
        if (r.manifests.size() == 1 && r.diagnostics.empty()) ++opened;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), 60);
}

// A dotenv that real sops encrypted (Flux's envs/env.env), behind a secretGenerator: its pairs
// become the Secret's data, and history seals that Secret. Behind a configMapGenerator (whose
// values every output shows) it is refused.
TEST(SopsFiles, ASecretGeneratorReadsASopsDotenv) {
  TempDir dir;
  auto ring = Ring(dir, "age.txt");
  ASSERT_TRUE(ring);
  std::map<std::string, std::string> files = {
      {"app/kustomization.yaml",
       "secretGenerator: [{name: creds, envs: [env.env]}]\n"
       "generatorOptions: {disableNameSuffixHash: true}\n"},
      {"app/env.env", ReadFixture("env.env")},
      {"cm/kustomization.yaml", "configMapGenerator: [{name: c, envs: [env.env]}]\n"},
      {"cm/env.env", ReadFixture("env.env")}};
  const model::KustomizeReader reader = ReaderOf(files);
  model::ParseLimits limits;
  limits.sops = ring.get();
  auto set = model::RenderKustomization("app", reader, "", limits);
  const model::Secret* s = OnlySecret(set);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->data, (std::map<std::string, std::string>{{"key", "value"}}));
  ASSERT_TRUE(set.manifests[0].sops.has_value());
  const std::string sealed =
      model::SealSops(model::ToJson(set.manifests[0]), *set.manifests[0].sops);
  EXPECT_EQ(sealed.find("dmFsdWU="), std::string::npos) << sealed;
  // Tampered: the MAC says so, naming the file.
  files["app/env.env"] = Replace(ReadFixture("env.env"), "sops_lastmodified=2024-11-12T13:33:42Z",
                                 "sops_lastmodified=2024-11-12T13:33:43Z");
  auto tampered = model::RenderKustomization("app", reader, "", limits);
  ASSERT_FALSE(tampered.diagnostics.empty());
  EXPECT_NE(
      tampered.diagnostics[0].message.find("SOPS: env.env: sops.mac: the MAC does not decrypt"),
      std::string::npos)
      << tampered.diagnostics[0].ToString();
  auto cm = model::RenderKustomization("cm", reader, "", limits);
  ASSERT_FALSE(cm.diagnostics.empty());
  EXPECT_NE(cm.diagnostics[0].message.find("is SOPS-encrypted"), std::string::npos)
      << cm.diagnostics[0].ToString();

  // Hostile metadata (no key needed): nested 80,000 steps deep (a stack overflow before), or
  // 110,000 entries (24 s before): refused at once.
  std::string deep = "sops_a";
  for (int i = 0; i < 80000; ++i) deep += "__map_a";
  deep += "=x\nsops_mac=x\n";
  auto deep_open = model::OpenSopsDotenv(deep, *ring);
  ASSERT_FALSE(deep_open.ok());
  EXPECT_NE(deep_open.status().message().find("nested deeper than sops' metadata is"),
            std::string::npos);
  std::string wide = "x=ENC[AES256_GCM,\n";
  for (int i = 0; i < 110000; ++i) wide += "sops_" + std::to_string(i) + "=\n";
  auto wide_open = model::OpenSopsDotenv(wide + "sops_mac=x\n", *ring);
  ASSERT_FALSE(wide_open.ok());
  EXPECT_NE(wide_open.status().message().find("more than 256 sops_ entries"), std::string::npos);

  // One Secret from two dotenvs of different keys: history would seal team B's values for
  // team A's recipients. Refused.
  auto global = Ring(dir, "age-global.txt");
  ASSERT_TRUE(global);
  model::SopsOpened other;
  model::SopsProblem problem;
  ASSERT_TRUE(model::OpenSops(ReadFixture("global.yaml"), 0, 1, *global, model::ParseLimits{},
                              &other, &problem));
  const std::string key = other.envelope.data_key;
  unsigned char digest[64];
  SHA512(reinterpret_cast<const unsigned char*>("x"), 1, digest);
  std::string hex;
  for (unsigned char c : digest) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    hex += kHex[c >> 4];
    hex += kHex[c & 15];
  }
  std::string enc = other.envelope.age[0].enc;
  for (size_t at = enc.find('\n'); at != std::string::npos; at = enc.find('\n', at + 2)) {
    enc.replace(at, 1, "\\n");
  }
  files["two/kustomization.yaml"] =
      "secretGenerator: [{name: creds, envs: [team-b.env, mine.env]}]\n";
  files["two/team-b.env"] = ReadFixture("env.env");
  files["two/mine.env"] = "mine=" + Gcm(key, "x", "mine:", "str") +
                          "\nsops_age__list_0__map_enc=" + enc +
                          "\nsops_age__list_0__map_recipient=" + other.envelope.age[0].recipient +
                          "\nsops_lastmodified=2024-11-12T13:33:42Z\nsops_mac=" +
                          Gcm(key, hex, "2024-11-12T13:33:42Z", "str") +
                          "\nsops_unencrypted_suffix=_unencrypted\nsops_version=3.9.0\n";
  const std::string both = dir / "both.txt";
  std::ofstream(both) << ReadFixture("age.txt") << ReadFixture("age-global.txt");
  ::chmod(both.c_str(), 0600);
  auto both_ring = AgeKeyring::Open(both);
  ASSERT_TRUE(both_ring.ok());
  auto mine = model::OpenSopsDotenv(files["two/mine.env"], **both_ring);
  ASSERT_TRUE(mine.ok()) << mine.status().message();  // a valid file on its own
  model::ParseLimits both_limits;
  both_limits.sops = both_ring->get();
  auto two = model::RenderKustomization("two", reader, "", both_limits);
  ASSERT_FALSE(two.diagnostics.empty());
  EXPECT_NE(two.diagnostics[0].message.find("is encrypted with another data key"),
            std::string::npos)
      << two.diagnostics[0].ToString();
}

TEST(SopsFiles, AnIdentityFileOthersCanReadIsRefused) {
  TempDir dir;
  auto open = AgeKeyring::Open(PrivateCopy(dir, "age.txt", 0644));
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.status().message().find("can be read or written by its group or others"),
            std::string::npos)
      << open.status().message();
  fs::create_symlink(PrivateCopy(dir, "age-global.txt"), dir / "link.txt");
  EXPECT_FALSE(AgeKeyring::Open(dir / "link.txt").ok());
  std::ofstream(dir / "empty.txt") << "# nothing here\n";
  ::chmod((dir / "empty.txt").c_str(), 0600);
  auto empty = AgeKeyring::Open(dir / "empty.txt");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty.txt"), std::string::npos);
}

TEST(SopsFiles, MalformedMetadataIsAnErrorAtItsField) {
  TempDir dir;
  auto ring = Ring(dir, "age.txt");
  ASSERT_TRUE(ring);
  const std::string good = ReadFixture("age.yaml");
  struct Case {
    std::string from, to, want;
  } cases[] = {
      {"  lastmodified: \"2024-11-12T13:33:42Z\"", "  lastmodified: yesterday",
       "m.yaml:22:17: error: SOPS: must be an RFC 3339 time, as sops writes it "
       "(sops.lastmodified)"},
      {"  encrypted_regex: ^(data|stringData)$", "  encrypted_regex: x\n  encrypted_suffix: y",
       "Cannot use more than one of"},
      {"  pgp: []", "  pgp: []\n  key_groups: [{age: []}]",
       "SOPS: key groups (Shamir secret sharing) are not supported"},
      {"  pgp: []", "  pgp: []\n  surprise: 1",
       "m.yaml:25:13: error: SOPS: unknown SOPS metadata field (sops.surprise)"},
      {"  pgp: []", "  pgp: []\n  encrypted_comment_regex: x", "comment rules"},
      {"  age:\n", "  age: []\n  x:\n", "sops.x"},
      {"apiVersion: v1\n", "apiVersion: v1\nanchor: &a 1\nalias: *a\n", "anchors are not read"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.to);
    std::string err = OnlyError(Parse("m.yaml", Replace(good, c.from, c.to), ring.get()));
    EXPECT_NE(err.find(c.want), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace ballast::sops

// Hostile input is refused with a clear error, in bounded time and memory.

#include <gtest/gtest.h>

#include "model/codec.h"
#include "model/manifest.h"
#include "test_util.h"

namespace ballast::model {
namespace {

using testing::Errors;

TEST(HostileInputTest, FileOverFourMiBIsRefused) {
  std::string big(4u * 1024 * 1024 + 1, '#');
  FileParseResult r = ParseManifestFile("big.yaml", big);
  auto errors = Errors(r);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("larger than the limit"), std::string::npos);
  EXPECT_EQ(errors[0].where.file, "big.yaml");
  // Exactly at the limit is read (and here is just comments).
  EXPECT_TRUE(Errors(ParseManifestFile("ok.yaml", std::string(4u * 1024 * 1024, '#'))).empty());
}

TEST(HostileInputTest, DeepFlowNestingIsRefused) {
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto errors = Errors(ParseManifestFile("deep.yaml", deep));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].where.line, 1);
}

TEST(HostileInputTest, DeepBlockNestingIsRefused) {
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += std::string(i * 2, ' ') + "k" + std::to_string(i) + ":\n";
  deep += std::string(400, ' ') + "leaf\n";
  auto errors = Errors(ParseManifestFile("deep.yaml", deep));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("nesting deeper than"), std::string::npos);
}

TEST(HostileInputTest, BillionLaughsIsRefused) {
  std::string y =
      "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'i'; ++c) {
    y += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 9; ++i) y += std::string(i ? "," : "") + "*" + prev;
    y += "]\n";
    prev = c;
  }
  FileParseResult r = ParseManifestFile("lol.yaml", y);
  auto errors = Errors(r);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("alias"), std::string::npos);
}

TEST(HostileInputTest, UnknownAliasAndBinaryGarbage) {
  EXPECT_EQ(Errors(ParseManifestFile("a.yaml", "a: *nope\n")).size(), 1u);
  std::string garbage;
  for (int i = 0; i < 4096; ++i) garbage.push_back(static_cast<char>((i * 7919) % 256));
  FileParseResult r = ParseManifestFile("bin.yaml", garbage);
  EXPECT_FALSE(Errors(r).empty());
  EXPECT_TRUE(r.manifests.empty());
}

// Found by fuzz/manifest_fuzz: yaml-cpp returned the same empty document for a stray ',' a
// million times (0.4 s in Release, 7 s under ASan, per file) until the node limit stopped it
// with a wrong message. Now a syntax error at the comma, at once; empty documents still parse.
TEST(HostileInputTest, AStrayCommaIsASyntaxErrorNotAMillionDocuments) {
  for (const std::string text : {",", ",\n", "---\n,\n"}) {
    FileParseResult r = ParseManifestFile("comma.yaml", text);
    auto errors = Errors(r);
    ASSERT_EQ(errors.size(), 1u) << text;
    EXPECT_NE(errors[0].message.find("YAML syntax error"), std::string::npos) << errors[0].message;
    EXPECT_EQ(errors[0].message.find("nodes"), std::string::npos) << errors[0].message;
  }
  FileParseResult empty = ParseManifestFile("empty.yaml", "---\n---\n---\n");
  EXPECT_TRUE(Errors(empty).empty());
}

TEST(HostileInputTest, DeepJsonIsRefusedBeforeDecoding) {
  // Built without recursion: nlohmann's parser is iterative, its copy is not.
  std::string text =
      "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"spec\":" + std::string(200000, '[') +
      std::string(200000, ']') + "}";
  Json deep = Json::parse(text);
  auto m = DecodeManifest(deep, {"api", 0, 0}, nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(PodTemplateFromJson(deep).ok());
  EXPECT_TRUE(CheckJsonDepth(Json::parse(R"({"a":[{"b":1}]})")).ok());
  // nlohmann's destructor is iterative, so dropping `deep` here is safe.
}

TEST(HostileInputTest, LimitsAreConfigurable) {
  ParseLimits limits;
  limits.max_nodes_per_file = 10;
  auto errors = Errors(ParseManifestFile("s.yaml", testing::kMinimalDeployment, limits));
  ASSERT_EQ(errors.size(), 1u);
}

TEST(HostileInputTest, BinaryOrLatin1FileIsNamedNotUtf8AtItsPosition) {
  // "caf\xe9" is Latin-1: the error points at the byte instead of failing inside the parser.
  auto errors = Errors(ParseManifestFile("latin1.yaml", "kind: Service\nname: caf\xe9\n"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].where.line, 2);
  EXPECT_EQ(errors[0].where.column, 10);
  EXPECT_NE(errors[0].message.find("not UTF-8 text (byte 0xe9)"), std::string::npos);
  // Overlong encodings and surrogates are not UTF-8 either; real multi-byte text is.
  EXPECT_EQ(Errors(ParseManifestFile("o.yaml", "a: \xc0\xaf\n")).size(), 1u);
  EXPECT_EQ(Errors(ParseManifestFile("s.yaml", "a: \xed\xa0\x80\n")).size(), 1u);
  EXPECT_NE(Errors(ParseManifestFile("u.yaml", "a: \"caf\xc3\xa9 \xf0\x9f\x9a\xa2\"\n"))
                .front()
                .message.find("Kind"),
            std::string::npos);
}

TEST(HostileInputTest, ParserMessagesNeverQuoteRawBytes) {
  auto errors = Errors(ParseManifestFile("esc.yaml", "a: \"\\\x01\"\n"));
  ASSERT_FALSE(errors.empty());
  for (char ch : errors[0].message) {
    EXPECT_TRUE(static_cast<unsigned char>(ch) >= 0x20 && static_cast<unsigned char>(ch) < 0x7f)
        << errors[0].message;
  }
}

}  // namespace
}  // namespace ballast::model

namespace ballast::model {
namespace {

// Fuzz finding (manifest_fuzz): NUL bytes in plain scalars came out of yaml-cpp as bytes that
// are not UTF-8; the object was accepted and its YAML did not parse again (nor could it be sent
// as JSON). Such a file is an error at the value.
TEST(HostileInputTest, ANulByteInAValueIsAnErrorNotBrokenText) {
  const std::string text =
      std::string("apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: a}\nm") +
      std::string(1, '\0') + " nameport: db\nspec:\nnd: Servi" + std::string(1, '\0') + "_e\n";
  FileParseResult r = ParseManifestFile("nul.yaml", text);
  for (const auto& m : r.manifests) {
    auto again = ParseManifestFile("again.yaml", ToYaml(m));
    EXPECT_EQ(again.manifests.size(), 1u) << ToYaml(m);
  }
  ASSERT_FALSE(r.diagnostics.empty());
  EXPECT_TRUE(r.diagnostics[0].is_error());
  EXPECT_NE(r.diagnostics[0].message.find("UTF-8"), std::string::npos) << Dump(r.diagnostics);
}

}  // namespace
}  // namespace ballast::model

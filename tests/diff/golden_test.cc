// Golden plans: each folder under tests/testdata/diff/ holds a case:
//   desired.yaml   the manifests in git (may be absent: nothing desired)
//   state.json     the recorded state (diff/state.h format; absent: nothing applied, live
//                  unknown). Strings "{{desired:NAME}}" / "{{applied:NAME}}" stand for the pod
//                  template hash of Deployment default/NAME on that side.
//   options.json   optional: {"ignoreDifferences": "[Kind:]/pointer,..."}
//   expected.txt   RenderText of the plan
//   expected.json  ToJson of the plan
// Revision hashes in the outputs are written back as the same placeholders, so the goldens
// do not change when the hash function does. BALLAST_UPDATE_GOLDEN=1 rewrites the expected
// files (review them before committing).

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "diff/plan.h"
#include "diff/render.h"
#include "diff/state.h"
#include "model/codec.h"
#include "model/manifest.h"

namespace ballast::diff {
namespace {

namespace fs = std::filesystem;
using model::Json;

fs::path CasesDir() { return fs::path(BALLAST_SOURCE_DIR) / "tests/testdata/diff"; }

std::vector<std::string> CaseNames() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(CasesDir(), ec)) {
    if (e.is_directory()) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool ReadText(const fs::path& p, std::string* out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

void ReplaceAll(std::string* s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (size_t pos = s->find(from); pos != std::string::npos; pos = s->find(from, pos)) {
    s->replace(pos, from.size(), to);
    pos += to.size();
  }
}

// Placeholder -> hash for every Deployment of one side.
void AddRevisions(const std::vector<model::Manifest>& ms, const std::string& side,
                  std::map<std::string, std::string>* placeholders) {
  for (const auto& m : ms) {
    if (const auto* d = m.deployment()) {
      (*placeholders)["{{" + side + ":" + d->metadata.name + "}}"] =
          model::PodTemplateHash(d->spec.template_);
    }
  }
}

class GoldenPlan : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenPlan, MatchesExpected) {
  const fs::path dir = CasesDir() / GetParam();
  std::vector<model::Manifest> desired;
  std::string text;
  if (ReadText(dir / "desired.yaml", &text)) {
    auto parsed = model::ParseManifestFile("desired.yaml", text);
    for (const auto& d : parsed.diagnostics) {
      ASSERT_FALSE(d.is_error()) << d.ToString();
    }
    desired = std::move(parsed.manifests);
  }

  std::map<std::string, std::string> placeholders;
  AddRevisions(desired, "desired", &placeholders);

  std::vector<model::Manifest> applied;
  std::optional<model::LiveState> live;
  if (ReadText(dir / "state.json", &text)) {
    // Objects first (their hashes may be referenced by pods), then the whole state.
    Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(j.is_discarded()) << "state.json is not JSON";
    auto objects_only =
        StateFromJson({{"objects", j.value("objects", Json::array())}}, "state.json");
    ASSERT_TRUE(objects_only.ok()) << objects_only.status().ToString();
    AddRevisions(objects_only->objects, "applied", &placeholders);
    for (const auto& [from, to] : placeholders) ReplaceAll(&text, from, to);
    auto state = StateFromJson(Json::parse(text), "state.json");
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    applied = std::move(state->objects);
    live = std::move(state->live);
  }

  PlanOptions options;
  if (ReadText(dir / "options.json", &text)) {
    auto rules = ParseIgnoreRules(Json::parse(text).value("ignoreDifferences", ""));
    ASSERT_TRUE(rules.ok()) << rules.status().ToString();
    options.ignore_differences = *rules;
  }

  Plan plan = ComputePlan(desired, applied, live ? &*live : nullptr, options);
  std::string got_text = RenderText(plan);

  // What a client receives from the API renders the same.
  JsonOptions full;
  full.include_documents = true;
  auto back = PlanFromJson(Json::parse(ToJson(plan, full).dump()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(RenderText(*back), got_text);
  EXPECT_EQ(ToJson(*back, full), ToJson(plan, full));

  std::string got_json = ToJson(plan).dump(2) + "\n";
  // Desired placeholders win where both sides have the same hash.
  for (const std::string side : {"desired", "applied"}) {
    for (const auto& [name, hash] : placeholders) {
      if (name.rfind("{{" + side, 0) != 0) continue;
      ReplaceAll(&got_text, hash, name);
      ReplaceAll(&got_json, hash, name);
    }
  }

  if (std::getenv("BALLAST_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(dir / "expected.txt", std::ios::binary) << got_text;
    std::ofstream(dir / "expected.json", std::ios::binary) << got_json;
    GTEST_SKIP() << "rewrote the expected files of " << GetParam();
  }
  std::string want_text, want_json;
  ASSERT_TRUE(ReadText(dir / "expected.txt", &want_text)) << "missing " << dir / "expected.txt";
  ASSERT_TRUE(ReadText(dir / "expected.json", &want_json)) << "missing " << dir / "expected.json";
  EXPECT_EQ(got_text, want_text);
  EXPECT_EQ(got_json, want_json);
}

INSTANTIATE_TEST_SUITE_P(Cases, GoldenPlan, ::testing::ValuesIn(CaseNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// Every case's desired state against every case's recorded state: whatever the mix, planning
// and every rendering succeed, and the plan survives its JSON round trip.
TEST(GoldenPlanCases, EveryDesiredAgainstEveryState) {
  std::vector<std::vector<model::Manifest>> desired_sets;
  std::vector<RecordedState> states;
  for (const auto& name : CaseNames()) {
    std::string text;
    if (ReadText(CasesDir() / name / "desired.yaml", &text)) {
      desired_sets.push_back(model::ParseManifestFile("desired.yaml", text).manifests);
    }
    if (ReadText(CasesDir() / name / "state.json", &text)) {
      ReplaceAll(&text, "{{", "r");
      ReplaceAll(&text, "}}", "");
      auto state = StateFromJson(Json::parse(text), "state.json");
      ASSERT_TRUE(state.ok()) << name << ": " << state.status().ToString();
      states.push_back(std::move(*state));
    }
  }
  ASSERT_GE(desired_sets.size(), 10u);
  ASSERT_GE(states.size(), 10u);
  int changed = 0;
  for (const auto& want : desired_sets) {
    for (const auto& had : states) {
      Plan plan = ComputePlan(want, had.objects, had.live ? &*had.live : nullptr);
      EXPECT_FALSE(RenderText(plan).empty());
      for (const auto& o : plan.objects) {
        if (o.is_change() && !o.old_doc.is_null() && !o.new_doc.is_null()) {
          EXPECT_NE(RenderUnifiedDiff(o), "") << o.key.ToString();
        }
      }
      JsonOptions full;
      full.include_documents = true;
      full.include_diff = true;
      Json j = ToJson(plan, full);
      auto back = PlanFromJson(j);
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_EQ(RenderText(*back), RenderText(plan));
      changed += plan.has_changes() ? 1 : 0;
    }
  }
  EXPECT_GT(changed, 0);
}

// The cases issue 4 asks for are all there (a folder removed by mistake fails here).
TEST(GoldenPlanCases, RequiredCasesExist) {
  auto names = CaseNames();
  for (const char* want : {"create", "delete", "image-change", "replicas-only", "env-reordered",
                           "equivalent-quantities", "ignored-field", "unsupported-kind",
                           "immutable-selector", "service-port-change", "drift-only"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
}

}  // namespace
}  // namespace ballast::diff

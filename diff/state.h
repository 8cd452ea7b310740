#pragma once

// A recorded state to plan against (`ballast plan --against STATE.json`), as one JSON value:
//
//   {
//     "objects": [ <manifest as JSON>, ... ],   // the last-applied objects
//     "nodes":   [ <model::ToJson(Node)>, ... ], // optional: live nodes
//     "pods":    [ <model::ToJson(Pod)>, ... ]    // optional: live pods
//   }
//
// Every key is optional. When neither "nodes" nor "pods" is present the live state is unknown
// and the plan looks for no drift. Pure: the caller reads the file.

#include <optional>
#include <vector>

#include "model/cluster.h"
#include "model/object.h"
#include "model/status.h"

namespace ballast::diff {

struct RecordedState {
  std::vector<model::Manifest> objects;
  std::optional<model::LiveState> live;
};

// Errors name the entry: "objects[2]: spec.replicas: ...", "pods[0]: ...". `source` is the
// file name objects are positioned at.
Result<RecordedState> StateFromJson(const model::Json& state, const std::string& source);

// The inverse, for tools and tests that record a state.
model::Json ToJson(const RecordedState& state);

}  // namespace ballast::diff

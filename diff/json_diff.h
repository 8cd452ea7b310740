#pragma once

// Structural comparison of normalized object documents, and the JSON-pointer edits that
// ignore-differences makes. Lists that Kubernetes merges by key are matched by key. Pure.

#include <string>
#include <string_view>
#include <vector>

#include "diff/plan.h"
#include "model/object.h"
#include "model/status.h"

namespace ballast::diff {

// Maximum nesting of JSON accepted from outside (recorded states, API plans). Kubernetes objects
// nest about 15 levels; copying or comparing a much deeper value would recurse off the stack.
inline constexpr int kMaxJsonDepth = 100;

// True when `value` nests deeper than `max_depth` maps and lists. Iterative: safe on any input.
bool JsonDeeperThan(const model::Json& value, int max_depth);

// Compact JSON text; invalid UTF-8 in strings is replaced, never thrown.
std::string DumpCompact(const model::Json& value);

// The merge key of an item of the list named `list_field` ("containers", "env", "ports", ...)
// as shown to people: the name, the mount path, or "<port>/<protocol>" for ports. "" when that
// list is not keyed or the item has no key.
std::string ItemKey(std::string_view list_field, const model::Json& item);

// Splits a JSON pointer ("/a/b~1c") into unescaped segments ({"a", "b/c"}).
Result<std::vector<std::string>> ParsePointer(std::string_view pointer);

// "b/c" -> "b~1c", "~" -> "~0".
std::string EscapePointerSegment(std::string_view segment);

// The display form of a field under `parent`: "spec.replicas", or
// `metadata.annotations["ballast.dev/prune"]` for keys that are not plain identifiers.
std::string JoinField(std::string_view parent, std::string_view key);

// Removes every value the pointer designates from `doc`. A segment under a list matches an item
// by index, by ItemKey, by its "name", or by its port number; "*" matches every key or item.
// Returns how many values were removed.
int RemoveAtPointer(model::Json& doc, const std::vector<std::string>& segments);

// Appends the differences from `old_doc` to `new_doc` to `out`, outermost first, in document
// order (removed list items after the kept and added ones). Keyed list items are matched by
// ItemKey, except ports, which are matched by name when every port on both sides has one.
// Lists of scalars and unkeyed lists whose length changed are replaced whole.
void DiffDocuments(const model::Json& old_doc, const model::Json& new_doc,
                   std::vector<FieldChange>* out);

}  // namespace ballast::diff

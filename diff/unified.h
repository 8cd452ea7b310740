#pragma once

// A line-based unified diff (the `diff -u` format) of two texts. Pure.

#include <string>
#include <string_view>

namespace ballast::diff {

// "" when the texts are equal. Hunks carry `context` lines around each change. Long inputs
// whose changed middle is too large for an exact line alignment fall back to showing that
// middle as removed then added, so time and memory stay bounded.
std::string UnifiedDiff(std::string_view old_text, std::string_view new_text,
                        const std::string& old_name, const std::string& new_name, int context = 3);

}  // namespace ballast::diff

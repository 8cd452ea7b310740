#include "diff/unified.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace ballast::diff {

namespace {

// Above this many cells the exact alignment of the changed middle is not attempted.
constexpr size_t kMaxAlignCells = size_t{4} << 20;

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

struct Edit {
  char op;  // ' ', '-', '+'
  std::string_view line;
};

// Longest-common-subsequence alignment of a[0..n) and b[0..m), as edits.
void Align(const std::vector<std::string_view>& a, size_t a0, size_t n,
           const std::vector<std::string_view>& b, size_t b0, size_t m, std::vector<Edit>* out) {
  if (n == 0 || m == 0 || n * m > kMaxAlignCells) {
    for (size_t i = 0; i < n; ++i) out->push_back({'-', a[a0 + i]});
    for (size_t j = 0; j < m; ++j) out->push_back({'+', b[b0 + j]});
    return;
  }
  // len[i][j]: LCS length of a[i..n) and b[j..m).
  std::vector<uint32_t> len((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> uint32_t& { return len[i * (m + 1) + j]; };
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      at(i, j) =
          a[a0 + i] == b[b0 + j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
    }
  }
  size_t i = 0, j = 0;
  while (i < n && j < m) {
    if (a[a0 + i] == b[b0 + j]) {
      out->push_back({' ', a[a0 + i]});
      ++i;
      ++j;
    } else if (at(i + 1, j) >= at(i, j + 1)) {
      out->push_back({'-', a[a0 + i]});
      ++i;
    } else {
      out->push_back({'+', b[b0 + j]});
      ++j;
    }
  }
  for (; i < n; ++i) out->push_back({'-', a[a0 + i]});
  for (; j < m; ++j) out->push_back({'+', b[b0 + j]});
}

std::string Range(size_t start, size_t count) {
  // GNU diff: an empty range names the line before it; a count of 1 is left out.
  if (count == 0) return std::to_string(start == 0 ? 0 : start - 1) + ",0";
  if (count == 1) return std::to_string(start);
  return std::to_string(start) + "," + std::to_string(count);
}

}  // namespace

std::string UnifiedDiff(std::string_view old_text, std::string_view new_text,
                        const std::string& old_name, const std::string& new_name, int context) {
  if (old_text == new_text) return "";
  if (context < 0) context = 0;
  auto a = SplitLines(old_text);
  auto b = SplitLines(new_text);
  size_t prefix = 0;
  while (prefix < a.size() && prefix < b.size() && a[prefix] == b[prefix]) ++prefix;
  size_t suffix = 0;
  while (suffix < a.size() - prefix && suffix < b.size() - prefix &&
         a[a.size() - 1 - suffix] == b[b.size() - 1 - suffix]) {
    ++suffix;
  }
  std::vector<Edit> edits;
  edits.reserve(a.size() + b.size());
  for (size_t i = 0; i < prefix; ++i) edits.push_back({' ', a[i]});
  Align(a, prefix, a.size() - prefix - suffix, b, prefix, b.size() - prefix - suffix, &edits);
  for (size_t i = a.size() - suffix; i < a.size(); ++i) edits.push_back({' ', a[i]});

  std::string out = "--- " + old_name + "\n+++ " + new_name + "\n";
  const size_t ctx = static_cast<size_t>(context);
  size_t k = 0;
  // Line numbers (1-based) of edits[k] in the old and new text.
  std::vector<size_t> old_line(edits.size() + 1), new_line(edits.size() + 1);
  size_t ol = 1, nl = 1;
  for (size_t e = 0; e < edits.size(); ++e) {
    old_line[e] = ol;
    new_line[e] = nl;
    if (edits[e].op != '+') ++ol;
    if (edits[e].op != '-') ++nl;
  }
  old_line[edits.size()] = ol;
  new_line[edits.size()] = nl;
  while (k < edits.size()) {
    while (k < edits.size() && edits[k].op == ' ') ++k;
    if (k == edits.size()) break;
    size_t start = k >= ctx ? k - ctx : 0;
    // Extend the hunk while the next change is within 2*context unchanged lines.
    size_t end = k;
    while (true) {
      while (end < edits.size() && edits[end].op != ' ') ++end;
      size_t run = end;
      while (run < edits.size() && edits[run].op == ' ') ++run;
      if (run < edits.size() && run - end <= 2 * ctx) {
        end = run;
        continue;
      }
      end = std::min(edits.size(), end + ctx);
      break;
    }
    size_t old_count = 0, new_count = 0;
    for (size_t e = start; e < end; ++e) {
      if (edits[e].op != '+') ++old_count;
      if (edits[e].op != '-') ++new_count;
    }
    out += "@@ -" + Range(old_line[start], old_count) + " +" + Range(new_line[start], new_count) +
           " @@\n";
    for (size_t e = start; e < end; ++e) {
      out += edits[e].op;
      out += edits[e].line;
      out += '\n';
    }
    k = end;
  }
  return out;
}

}  // namespace ballast::diff

// The status page lists the source's warnings (e.g. two Services on one port) under the errors,
// HTML-escaped, as `ballast status` does; without warnings there is no such section.

#include <gtest/gtest.h>

#include <string>

#include "reconciler/status_page.h"

namespace ballast::reconciler {
namespace {

using model::Json;

StatusPageInput WithStatus(const std::string& status) {
  StatusPageInput in;
  in.status = Json::parse(status);
  return in;
}

TEST(StatusPageWarningsTest, WarningsAreListedWithTheirPlaceEscaped) {
  std::string page = RenderStatusPage(WithStatus(R"({
    "revision": "abc", "appliedRevision": "abc", "sync": "Synced", "health": "Healthy",
    "errors": [], "pinned": null, "syncPolicy": "auto", "sourceError": null,
    "warnings": [{"file": "svc/<b>.yaml", "line": 3, "column": 1, "field": "spec.ports[0].port",
                  "message": "port 80 is also spec.ports[0].port of Service default/orders"}],
    "objects": []})"));
  EXPECT_NE(page.find("<h2>Warnings in git</h2><ul class=\"warnings\"><li><code>svc/&lt;b&gt;.yaml:"
                      "3:1</code>: spec.ports[0].port: port 80 is also spec.ports[0].port of "
                      "Service default/orders</li></ul>"),
            std::string::npos)
      << page;
  EXPECT_EQ(page.find("<h2>Errors in git</h2>"), std::string::npos);
}

TEST(StatusPageWarningsTest, NoWarningsNoSection) {
  std::string page = RenderStatusPage(WithStatus(R"({
    "revision": "abc", "appliedRevision": "abc", "sync": "Synced", "health": "Healthy",
    "errors": [], "pinned": null, "syncPolicy": "auto", "sourceError": null, "objects": []})"));
  EXPECT_EQ(page.find("<h2>Warnings in git</h2>"), std::string::npos);
}

}  // namespace
}  // namespace ballast::reconciler

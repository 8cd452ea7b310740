// Services that share a port: every agent serves each Service on the node's address, so two
// Services on one port would share a listener and mix their endpoints. Kubernetes manifests do
// this all the time (every Service on port 80, each with an IP of its own), so ballast warns,
// naming both places, instead of silently sending one Service's traffic to the other's pods.

#include <gtest/gtest.h>

#include "model/manifest.h"

namespace ballast::model {
namespace {

std::string Svc(const std::string& name, const std::string& ports) {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
         "\nspec:\n  selector: {app: " + name + "}\n  ports:\n" + ports;
}

std::vector<Diagnostic> Warnings(const ManifestSet& set) {
  std::vector<Diagnostic> out;
  for (const auto& d : set.diagnostics) {
    if (!d.is_error()) out.push_back(d);
  }
  return out;
}

TEST(ServicePortsTest, TwoServicesOnOnePortWarnWithBothPlaces) {
  ManifestSet set =
      ParseManifests({{"orders.yaml", Svc("orders", "  - port: 80\n    targetPort: 8080\n")},
                      {"deploy/payment.yaml", "# payment\n" + Svc("payment", "  - port: 80\n")}});
  EXPECT_TRUE(set.ok());  // a warning: what runs today keeps running
  auto w = Warnings(set);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].where.file, "deploy/payment.yaml");
  EXPECT_EQ(w[0].where.line, 2);
  EXPECT_EQ(w[0].field, "spec.ports[0].port");
  EXPECT_NE(w[0].message.find("port 80 is also spec.ports[0].port of Service default/orders "
                              "(orders.yaml:1:1)"),
            std::string::npos)
      << w[0].message;
}

TEST(ServicePortsTest, NodePortOfOneIsThePortOfAnother) {
  ManifestSet set = ParseManifests(
      {{"a.yaml", Svc("a", "  - port: 30080\n")},
       {"b.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec:\n  type: NodePort\n"
        "  selector: {app: b}\n  ports:\n  - port: 8080\n    nodePort: 30080\n"}});
  auto w = Warnings(set);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].field, "spec.ports[0].nodePort");
}

TEST(ServicePortsTest, DistinctPortsUdpAndOwnNodePortAreFine) {
  ManifestSet set = ParseManifests(
      {{"a.yaml", Svc("a", "  - {name: http, port: 80}\n  - {name: admin, port: 81}\n")},
       {"dns.yaml", Svc("dns", "  - port: 80\n    protocol: UDP\n")},
       {"c.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: c}\nspec:\n  type: NodePort\n"
        "  selector: {app: c}\n  ports:\n  - port: 30090\n    nodePort: 30090\n"}});
  EXPECT_TRUE(set.diagnostics.empty()) << set.diagnostics.at(0).ToString();
}

}  // namespace
}  // namespace ballast::model

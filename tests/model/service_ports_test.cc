// Services that share a port: each has a cluster IP of its own, as in Kubernetes (manifests put
// every Service on port 80 all the time), but on the node's address one port serves one Service
// only: the first by namespace/name. ballast warns, naming both places and the Service the
// node's address serves, so nobody expects the others there.

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
  EXPECT_NE(w[0].message.find("each Service is served at its own cluster IP, but on the node's "
                              "address port 80 serves only Service default/orders (the first by "
                              "namespace/name)"),
            std::string::npos)
      << w[0].message;
}

TEST(ServicePortsTest, NamesTheServiceTheNodeAddressServesByNameNotFileOrder) {
  ManifestSet set = ParseManifests({{"a.yaml", Svc("zeta", "  - port: 80\n")},
                                    {"b.yaml", Svc("mid", "  - port: 80\n")},
                                    {"c.yaml", Svc("alpha", "  - port: 80\n")}});
  auto w = Warnings(set);
  ASSERT_EQ(w.size(), 2u);
  for (const auto& d : w) {
    EXPECT_NE(d.message.find("is also spec.ports[0].port of Service default/zeta (a.yaml:1:1)"),
              std::string::npos)
        << d.message;
    EXPECT_NE(d.message.find("port 80 serves only Service default/alpha"), std::string::npos)
        << d.message;
  }
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

TEST(ServicePortsTest, TwoServicesAskingForOneClusterIPWarnTheSecond) {
  auto pinned = [](const std::string& name, const std::string& ip, int port) {
    return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name +
           "}\nspec:\n  clusterIP: " + ip + "\n  selector: {app: " + name +
           "}\n  ports:\n  - port: " + std::to_string(port) + "\n";
  };
  ManifestSet set = ParseManifests({{"z.yaml", pinned("zeta", "127.9.9.9", 80)},
                                    {"a.yaml", pinned("alpha", "127.9.9.9", 81)},
                                    {"h.yaml", pinned("headless", "None", 82)},
                                    {"g.yaml", pinned("gke", "10.96.0.10", 83)}});
  auto w = Warnings(set);
  ASSERT_EQ(w.size(), 1u) << w.at(1).message;
  EXPECT_EQ(w[0].where.file, "z.yaml");
  EXPECT_EQ(w[0].field, "spec.clusterIP");
  EXPECT_NE(w[0].message.find("cluster IP 127.9.9.9 is also asked for by Service default/alpha "
                              "(a.yaml:1:1), which keeps it"),
            std::string::npos)
      << w[0].message;
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

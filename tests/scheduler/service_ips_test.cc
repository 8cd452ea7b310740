// Cluster IPs: each Service gets an address of its own in 127.128.0.0/9, the same whatever the
// order of the manifests, and keeps it when other Services come and go (unless they collide).

#include "scheduler/service_ips.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

namespace ballast::scheduler {
namespace {

model::Service Svc(const std::string& name, const std::string& cluster_ip = "",
                   const std::string& namespace_ = "default") {
  model::Service s;
  s.metadata.name = name;
  s.metadata.namespace_ = namespace_;
  if (!cluster_ip.empty()) s.spec.extra["clusterIP"] = cluster_ip;
  return s;
}

std::vector<const model::Service*> Pointers(const std::vector<model::Service>& services) {
  std::vector<const model::Service*> out;
  for (const auto& s : services) out.push_back(&s);
  return out;
}

bool InRange(const std::string& ip) {
  if (!IsLoopbackIPv4(ip)) return false;
  int a, b, c, d;
  if (std::sscanf(ip.c_str(), "%d.%d.%d.%d", &a, &b, &c, &d) != 4) return false;
  return a == 127 && b >= 128 && d != 0 && d != 255;
}

TEST(ServiceIPsTest, EachServiceGetsItsOwnAddressInTheLoopbackRange) {
  // sock-shop's Services: six on port 80, three on 27017; each needs an address of its own.
  std::vector<model::Service> services;
  for (const char* n :
       {"carts", "carts-db", "catalogue", "catalogue-db", "front-end", "orders", "orders-db",
        "payment", "queue-master", "rabbitmq", "session-db", "shipping", "user", "user-db"}) {
    services.push_back(Svc(n, "", "sock-shop"));
  }
  services.push_back(Svc("orders"));  // same name, other namespace
  auto ips = AllocateClusterIPs(Pointers(services));
  ASSERT_EQ(ips.size(), services.size());
  std::set<std::string> distinct;
  for (const auto& [key, ip] : ips) {
    EXPECT_TRUE(InRange(ip)) << key << " " << ip;
    distinct.insert(ip);
  }
  EXPECT_EQ(distinct.size(), services.size());
  EXPECT_EQ(ips["sock-shop/orders"], HashedClusterIP("sock-shop", "orders"));
  EXPECT_NE(ips["sock-shop/orders"], ips["default/orders"]);
}

TEST(ServiceIPsTest, StableAcrossCallsInputOrderAndOtherServices) {
  std::vector<model::Service> services;
  for (int i = 0; i < 200; ++i) services.push_back(Svc("svc-" + std::to_string(i)));
  const auto first = AllocateClusterIPs(Pointers(services));
  EXPECT_EQ(AllocateClusterIPs(Pointers(services)), first);
  std::mt19937 rng(7);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(services.begin(), services.end(), rng);
    EXPECT_EQ(AllocateClusterIPs(Pointers(services)), first);
  }
  // Adding and removing other Services leaves an address alone (no collision at this size).
  std::vector<model::Service> fewer(services.begin(), services.begin() + 50);
  fewer.push_back(Svc("newcomer"));
  for (const auto& [key, ip] : AllocateClusterIPs(Pointers(fewer))) {
    if (key != "default/newcomer") {
      EXPECT_EQ(ip, first.at(key)) << key;
    }
  }
  // The value is fixed by FNV-1a, not by the standard library: the same on every build.
  EXPECT_EQ(HashedClusterIP("default", "web"), "127.214.52.187");
}

TEST(ServiceIPsTest, CollisionsProbeTheNextAddressInNameOrder) {
  // "b" asks for the address "a"'s hash points at: "a" probes the next one, "c" (asking for
  // the same address after "b") is allocated from its own hash instead.
  const std::string a_hash = HashedClusterIP("default", "a");
  std::vector<model::Service> services = {Svc("c", a_hash), Svc("a"), Svc("b", a_hash)};
  auto ips = AllocateClusterIPs(Pointers(services));
  EXPECT_EQ(ips["default/b"], a_hash);
  EXPECT_NE(ips["default/a"], a_hash);
  EXPECT_TRUE(InRange(ips["default/a"]));
  EXPECT_EQ(ips["default/c"], HashedClusterIP("default", "c"));
  // Same answer in any order.
  std::vector<model::Service> reversed(services.rbegin(), services.rend());
  EXPECT_EQ(AllocateClusterIPs(Pointers(reversed)), ips);
}

TEST(ServiceIPsTest, HonoursLoopbackClusterIPAndHeadless) {
  std::vector<model::Service> services = {Svc("pinned", "127.200.0.7"), Svc("headless", "None"),
                                          Svc("gke", "10.96.0.10"), Svc("bad", "127.1"),
                                          Svc("worse", "127.0.0.300")};
  auto ips = AllocateClusterIPs(Pointers(services));
  EXPECT_EQ(ips["default/pinned"], "127.200.0.7");
  EXPECT_EQ(ips["default/headless"], "");
  // Not a loopback address: allocated as if unset.
  EXPECT_EQ(ips["default/gke"], HashedClusterIP("default", "gke"));
  EXPECT_EQ(ips["default/bad"], HashedClusterIP("default", "bad"));
  EXPECT_EQ(ips["default/worse"], HashedClusterIP("default", "worse"));
}

TEST(ServiceIPsTest, LoopbackAddressParsing) {
  EXPECT_TRUE(IsLoopbackIPv4("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackIPv4("127.255.255.254"));
  for (const char* bad : {"", "127", "127.0.0", "127.0.0.1.", "127..0.1", "128.0.0.1",
                          "127.0.0.256", "127.0.0.1 ", "127.0.0.0001", "localhost"}) {
    EXPECT_FALSE(IsLoopbackIPv4(bad)) << bad;
  }
}

}  // namespace
}  // namespace ballast::scheduler

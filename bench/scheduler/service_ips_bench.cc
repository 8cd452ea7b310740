// Cluster IP allocation, as the reconciler runs it on every pass over the applied Services.
// BM_AllocateClusterIPs/<services>: Services "svc-<i>" spread over 20 namespaces, every tenth
// with spec.clusterIP None. `items_per_second` is Services allocated per second.

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "scheduler/service_ips.h"

namespace ballast::scheduler {
namespace {

void BM_AllocateClusterIPs(benchmark::State& state) {
  std::vector<model::Service> services(static_cast<size_t>(state.range(0)));
  for (size_t i = 0; i < services.size(); ++i) {
    services[i].metadata.name = "svc-" + std::to_string(i);
    services[i].metadata.namespace_ = "team-" + std::to_string(i % 20);
    if (i % 10 == 0) services[i].spec.extra["clusterIP"] = "None";
  }
  std::vector<const model::Service*> pointers;
  for (const auto& s : services) pointers.push_back(&s);
  for (auto _ : state) benchmark::DoNotOptimize(AllocateClusterIPs(pointers));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_AllocateClusterIPs)->Arg(100)->Arg(10000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace ballast::scheduler

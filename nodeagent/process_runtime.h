#pragma once

// The process runtime: a container is `command` + `args` run as a process group of its own on
// the node (process.h), placed in the pod's cgroups when the agent has them (which hold its
// pids limit), confined as its securityContext says (confinement.h), adopted after an agent
// restart by pid and process start time.

#include "nodeagent/confinement.h"
#include "nodeagent/runtime.h"

namespace ballast::nodeagent {

// What the process runtime applies to a container started with `launch`: it runs as root when
// its uid is 0, or when it has none and the agent runs as root.
Confinement ProcessConfinement(const ContainerLaunch& launch, bool agent_is_root);

class ProcessRuntime : public ContainerRuntime {
 public:
  std::string name() const override { return "process"; }
  // The executable is resolved in the launch's PATH; a missing one is a NotFound error.
  Result<ContainerRef> Start(const ContainerLaunch& launch) override;
  ContainerObservation Observe(ContainerRef& ref) override;
  void Signal(const ContainerRef& ref, int signal) override;
  bool Adopt(ContainerRef& ref, const ContainerLaunch& launch) override;
  // Kills what is left of the process group.
  void Release(const ContainerRef& ref) override;
  ProbeOutcome Exec(const ContainerRef& ref, const ProcessSpec& base,
                    const std::vector<std::string>& command, int timeout_ms) override;
};

}  // namespace ballast::nodeagent

#pragma once

// Health of an object and of the whole application, in Argo CD's words and order
// (gitops-engine pkg/health): a worse health has a larger value, and the application is as
// healthy as its worst object.

#include <algorithm>

namespace ballast::reconciler {

enum class Health { kHealthy, kSuspended, kProgressing, kMissing, kDegraded, kUnknown };

inline const char* HealthName(Health h) {
  switch (h) {
    case Health::kHealthy:
      return "Healthy";
    case Health::kSuspended:
      return "Suspended";
    case Health::kProgressing:
      return "Progressing";
    case Health::kMissing:
      return "Missing";
    case Health::kDegraded:
      return "Degraded";
    case Health::kUnknown:
      return "Unknown";
  }
  return "Unknown";
}

inline Health Worse(Health a, Health b) { return std::max(a, b); }

}  // namespace ballast::reconciler

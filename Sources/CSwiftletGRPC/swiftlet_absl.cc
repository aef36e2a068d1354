/*
 * swiftlet_absl.cc — the one C++ call the bridge needs: abseil's Mutex settings.
 *
 * The gRPC core locks through absl::Mutex. Debian builds abseil without NDEBUG, so every
 * Lock and Unlock runs abseil's debug-only deadlock detection (a global lock-order graph,
 * per-thread held-lock lists): about a seventh of the server's instructions per small CRI call.
 * Builds with NDEBUG (upstream gRPC's own) compile it out; switching it off at run time
 * gives the same locks. The function is C++ only (in a versioned inline namespace, so its
 * name cannot be spelled from C), hence this file.
 */
#include "swiftlet_grpc.h"

#include <absl/synchronization/mutex.h>

extern "C" void swg_disable_lock_debugging(void) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

/*
 * swiftlet_grpc_client.h — one unary gRPC call on a channel of its own (plain text), for the
 * node's gRPC probes.
 *
 * A call is created, run once (blocking, on a thread of the caller's own: never on a thread
 * that must not block), read, and freed. It connects first, as a probe must tell "could not
 * connect" from "the call failed": the channel's connection attempt ends ready, failed
 * (refused, unreachable, unresolvable: reported at once, not at the deadline) or at the
 * deadline; the call then runs within what is left of it.
 *
 * Threading: swg_client_call_cancel may be called from any thread at any time between create
 * and free (before, during or after run). Everything else is for one thread at a time.
 *
 * Ownership: the caller owns the call from create to free; the bridge owns every gRPC
 * pointer inside it. Each call holds a gRPC core reference (grpc_init) until it is freed, so
 * it coexists with servers in the same process (swiftlet_grpc.h), which hold their own.
 */
#ifndef SWIFTLET_GRPC_CLIENT_H
#define SWIFTLET_GRPC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "swiftlet_grpc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct swg_client_call swg_client_call;

typedef enum swg_client_outcome {
  /* The call ran: its status (and, when OK, its response) are available. */
  SWG_CLIENT_COMPLETED = 0,
  /* No connection: the attempt failed (status UNAVAILABLE, details say why). */
  SWG_CLIENT_CONNECT_FAILED = 1,
  /* The deadline passed before a connection was ready (status DEADLINE_EXCEEDED). */
  SWG_CLIENT_CONNECT_TIMEOUT = 2,
  /* swg_client_call_cancel stopped it (status CANCELLED). */
  SWG_CLIENT_CANCELLED = 3,
} swg_client_outcome;

/* Creates a call of method ("/package.Service/Method") to target (a gRPC target such as
   "dns:///10.0.0.7:8080") carrying request. user_agent (may be NULL) leads the user-agent
   header. No proxy is used and no connection is shared with other calls. Returns NULL when
   out of memory. */
swg_client_call *swg_client_call_create(const char *target, const char *method, const uint8_t *request,
                                        size_t length, const char *user_agent);

/* Connects and runs the call within timeout_ns (from now), blocking until it is over.
   Once per call. */
void swg_client_call_run(swg_client_call *call, int64_t timeout_ns);

/* Stops the call: a run in progress returns promptly with SWG_CLIENT_CANCELLED unless it
   already had its answer; a run not yet started returns at once. Any thread. */
void swg_client_call_cancel(swg_client_call *call);

/* After run: how it ended, the gRPC status code and details (NUL-terminated, never NULL). */
swg_client_outcome swg_client_call_outcome(const swg_client_call *call);
swg_status_code swg_client_call_status(const swg_client_call *call);
const char *swg_client_call_details(const swg_client_call *call);

/* After run: the response message's bytes, or NULL if none arrived. */
const uint8_t *swg_client_call_response(const swg_client_call *call, size_t *length);

/* Frees the call (and its core reference). */
void swg_client_call_free(swg_client_call *call);

#ifdef __cplusplus
}
#endif

#endif

/*
 * swiftlet_grpc.h — Swiftlet's bridge to the gRPC C core.
 *
 * Only opaque handles, plain integers and a status enum cross this header: the gRPC headers
 * stay inside swiftlet_grpc.c (they define _GNU_SOURCE, which breaks Foundation's fd_set).
 *
 * Threading: swg_server_next is called by exactly one thread (the poller). Every other
 * function may be called from any thread. A call's request bytes stay valid until the call
 * is released.
 *
 * Ownership: a call arrives (SWG_EVENT_CALL) holding one reference for its Swift owner, who
 * gives it back with swg_call_release once the handler is done and SWG_EVENT_CLOSED was seen.
 * The bridge frees the call when that and every batch it started are done. The call of an
 * event stays valid until the next swg_server_next.
 *
 * Per call, at most one swg_call_send may be in flight, and swg_call_finish must not carry
 * a message while one is (the core refuses two messages at once; finish then returns 0).
 *
 * Shutdown: swg_server_shutdown stops accepting calls; when the core reports that (SWG_EVENT_
 * SERVER_SHUTDOWN) and every accepted call has been freed, the bridge shuts the completion
 * queue itself and the poller sees SWG_EVENT_QUEUE_SHUTDOWN. A batch started after that
 * fails (returns 0) instead of aborting the process.
 */
#ifndef SWIFTLET_GRPC_H
#define SWIFTLET_GRPC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct swg_server swg_server;
typedef struct swg_call swg_call;

/* The gRPC status codes (grpc/status.h), by number. */
typedef enum swg_status_code {
  SWG_STATUS_OK = 0,
  SWG_STATUS_CANCELLED = 1,
  SWG_STATUS_UNKNOWN = 2,
  SWG_STATUS_INVALID_ARGUMENT = 3,
  SWG_STATUS_DEADLINE_EXCEEDED = 4,
  SWG_STATUS_NOT_FOUND = 5,
  SWG_STATUS_ALREADY_EXISTS = 6,
  SWG_STATUS_PERMISSION_DENIED = 7,
  SWG_STATUS_RESOURCE_EXHAUSTED = 8,
  SWG_STATUS_FAILED_PRECONDITION = 9,
  SWG_STATUS_ABORTED = 10,
  SWG_STATUS_OUT_OF_RANGE = 11,
  SWG_STATUS_UNIMPLEMENTED = 12,
  SWG_STATUS_INTERNAL = 13,
  SWG_STATUS_UNAVAILABLE = 14,
  SWG_STATUS_DATA_LOSS = 15,
  SWG_STATUS_UNAUTHENTICATED = 16,
} swg_status_code;

typedef enum swg_event_kind {
  /* The queue is shut down: the poller should return. */
  SWG_EVENT_QUEUE_SHUTDOWN = 0,
  /* A new call and its request message (has_request says whether one arrived). */
  SWG_EVENT_CALL = 1,
  /* A message started with swg_call_send went out (ok = 1) or could not (ok = 0). */
  SWG_EVENT_SENT = 2,
  /* The call is over; cancelled = 1 if it ended without the server's status reaching the
     client (client cancel, deadline, connection loss, server cancel). Always after CALL. */
  SWG_EVENT_CLOSED = 3,
  /* The core finished swg_server_shutdown: no new calls; the queue shuts once every accepted
     call is freed. Informational. */
  SWG_EVENT_SERVER_SHUTDOWN = 4,
} swg_event_kind;

typedef struct swg_event {
  swg_event_kind kind;
  swg_call *call;
  int ok;
  int cancelled;
} swg_event;

/* Severity of a gRPC core log line: 0 debug, 1 info, 2 error. */
typedef void (*swg_log_fn)(int severity, const char *file, int line, const char *message);

/* Routes the gRPC core's own log lines to fn (process-wide; call before any server). */
void swg_set_log_function(swg_log_fn fn);

/* Turns off abseil's debug-only lock checking (deadlock detection) in the gRPC core's locks,
   process-wide; swg_server_create calls it. See swiftlet_absl.cc. */
void swg_disable_lock_debugging(void);

/* Names the calling thread (visible in ps -L, perf and gdb); at most 15 bytes are kept. */
void swg_name_current_thread(const char *name);

/* Creates a server for address ("unix:/path"); max_message_bytes bounds both directions.
   Returns NULL if the address cannot be bound (the core logs why). */
swg_server *swg_server_create(const char *address, int max_message_bytes);

/* Starts serving with `preposted` outstanding call requests. Returns 0, starting nothing, if
   swg_server_shutdown was already called. */
int swg_server_start(swg_server *server, int preposted);

/* Blocks for the next event the Swift side must see. Poller thread only. */
void swg_server_next(swg_server *server, swg_event *event);

/* Stops accepting calls; in-flight calls go on. SWG_EVENT_SERVER_SHUTDOWN follows when
   none remain. */
void swg_server_shutdown(swg_server *server);

/* Cancels every call in flight (the end of a shutdown grace period). */
void swg_server_cancel_all_calls(swg_server *server);

/* Frees the server once the poller has seen SWG_EVENT_QUEUE_SHUTDOWN. */
void swg_server_destroy(swg_server *server);

/* Frees a server that was never started (or whose start was refused). */
void swg_server_discard(swg_server *server);

/* The method path ("/package.Service/Method"), not NUL-terminated. */
const char *swg_call_method(const swg_call *call, size_t *length);

/* The request bytes, or NULL when no message arrived. */
const uint8_t *swg_call_request(const swg_call *call, size_t *length);

/* Nanoseconds until the call's deadline (negative if passed), INT64_MAX if none. */
int64_t swg_call_deadline_remaining_ns(const swg_call *call);

/* Sends one message of a server stream (initial metadata first, once). One send at a time:
   SWG_EVENT_SENT reports it. Returns 0 if the batch could not start. */
int swg_call_send(swg_call *call, const uint8_t *bytes, size_t length);

/* Ends the call: an optional last message (message != NULL), then the status. Returns 0 if
   the batch could not start. */
int swg_call_finish(swg_call *call, const uint8_t *message, size_t length, swg_status_code code,
                    const char *details);

/* Cancels the call (the client sees CANCELLED). */
void swg_call_cancel(swg_call *call);

/* The Swift owner's slot. */
void swg_call_set_user(swg_call *call, void *user);
void *swg_call_user(const swg_call *call);

/* Gives back the Swift owner's reference. */
void swg_call_release(swg_call *call);

#ifdef __cplusplus
}
#endif

#endif

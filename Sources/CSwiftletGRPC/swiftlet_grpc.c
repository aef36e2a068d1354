/*
 * swiftlet_grpc.c — the gRPC C core behind swiftlet_grpc.h.
 *
 * Every gRPC pointer Swiftlet uses is owned here. Per call the bridge keeps a small state
 * machine on the poller thread: the accepted call starts two batches at once, RECV_MESSAGE
 * (the request) and RECV_CLOSE_ON_SERVER (the end of the call, cancelled or not); Swift sees
 * the call only when its request is in, and its close only after that. Responses go out as
 * one batch (initial metadata, message, status) for unary calls, or one batch per message
 * plus a final status batch for server streams.
 */
#define _GNU_SOURCE 1 /* pthread_setname_np */
#include "swiftlet_grpc.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum swg_tag_kind {
  TAG_REQUEST_CALL,
  TAG_RECV_MESSAGE,
  TAG_RECV_CLOSE,
  TAG_SEND,
  TAG_FINISH,
  TAG_SERVER_SHUTDOWN,
};

struct swg_tag {
  enum swg_tag_kind kind;
  swg_call *call;
};

struct swg_call {
  swg_server *server;
  grpc_call *call;
  grpc_call_details details;
  grpc_metadata_array request_metadata;
  atomic_int refs;

  struct swg_tag request_tag, recv_tag, close_tag, send_tag, finish_tag;

  grpc_byte_buffer *recv_buffer;
  grpc_slice request;
  int has_request;
  int recv_done;
  int close_done;
  int cancelled;

  int accepted;
  atomic_int sent_initial_metadata;
  grpc_byte_buffer *send_buffer;
  grpc_byte_buffer *finish_buffer;
  grpc_slice status_details;
  int has_status_details;

  void *user;
};

struct swg_server {
  grpc_server *server;
  grpc_completion_queue *cq;
  struct swg_tag shutdown_tag;
  atomic_int shutting_down;
  /* Accepted calls not yet freed, and whether the server's shutdown notification came:
     the queue is shut down when both say nothing can start a batch any more. */
  atomic_int live_calls;
  atomic_int shutdown_seen;
  /* Batches start under the read lock; shutting the queue takes the write lock, so no
     batch can start on a shut queue (the core aborts on that). */
  pthread_rwlock_t queue_lock;
  int queue_shut;
  /* A call whose close completed before its request: its CLOSED is delivered right after
     its CALL. Poller thread only. */
  swg_call *pending_closed;
  /* A batch reference kept until Swift has handled the event that reported the batch, so
     the call stays valid while it does. Poller thread only. */
  swg_call *deferred_unref;
};

static void maybe_shutdown_queue(swg_server *s) {
  if (!atomic_load(&s->shutdown_seen) || atomic_load(&s->live_calls) != 0) {
    return;
  }
  pthread_rwlock_wrlock(&s->queue_lock);
  if (!s->queue_shut) {
    s->queue_shut = 1;
    grpc_completion_queue_shutdown(s->cq);
  }
  pthread_rwlock_unlock(&s->queue_lock);
}

static swg_log_fn swg_log_handler;

static void swg_log_trampoline(gpr_log_func_args *args) {
  swg_log_fn fn = swg_log_handler;
  if (fn != NULL) {
    fn((int)args->severity, args->file, args->line, args->message);
  }
}

void swg_set_log_function(swg_log_fn fn) {
  swg_log_handler = fn;
  gpr_set_log_function(fn != NULL ? swg_log_trampoline : NULL);
}

void swg_name_current_thread(const char *name) {
  char truncated[16];
  strncpy(truncated, name, sizeof(truncated) - 1);
  truncated[sizeof(truncated) - 1] = '\0';
  pthread_setname_np(pthread_self(), truncated);
}

static void call_unref(swg_call *c) {
  if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1) {
    return;
  }
  if (c->call != NULL) {
    grpc_call_unref(c->call);
  }
  grpc_call_details_destroy(&c->details);
  grpc_metadata_array_destroy(&c->request_metadata);
  if (c->recv_buffer != NULL) {
    grpc_byte_buffer_destroy(c->recv_buffer);
  }
  if (c->has_request) {
    grpc_slice_unref(c->request);
  }
  if (c->send_buffer != NULL) {
    grpc_byte_buffer_destroy(c->send_buffer);
  }
  if (c->finish_buffer != NULL) {
    grpc_byte_buffer_destroy(c->finish_buffer);
  }
  if (c->has_status_details) {
    grpc_slice_unref(c->status_details);
  }
  swg_server *s = c->server;
  int accepted = c->accepted;
  free(c);
  if (accepted && atomic_fetch_sub(&s->live_calls, 1) == 1) {
    maybe_shutdown_queue(s);
  }
}

static void request_call(swg_server *s) {
  swg_call *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    gpr_log(GPR_ERROR, "swiftlet: out of memory for a new call");
    return;
  }
  c->server = s;
  atomic_init(&c->refs, 1); /* the Swift owner's, handed over with SWG_EVENT_CALL */
  atomic_init(&c->sent_initial_metadata, 0);
  grpc_call_details_init(&c->details);
  grpc_metadata_array_init(&c->request_metadata);
  c->request_tag = (struct swg_tag){TAG_REQUEST_CALL, c};
  c->recv_tag = (struct swg_tag){TAG_RECV_MESSAGE, c};
  c->close_tag = (struct swg_tag){TAG_RECV_CLOSE, c};
  c->send_tag = (struct swg_tag){TAG_SEND, c};
  c->finish_tag = (struct swg_tag){TAG_FINISH, c};
  grpc_call_error err = grpc_server_request_call(s->server, &c->call, &c->details, &c->request_metadata,
                                                 s->cq, s->cq, &c->request_tag);
  if (err != GRPC_CALL_OK) {
    call_unref(c);
  }
}

swg_server *swg_server_create(const char *address, int max_message_bytes) {
  swg_disable_lock_debugging();
  grpc_init();
  swg_server *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    grpc_shutdown();
    return NULL;
  }
  grpc_arg args[3];
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = max_message_bytes;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = max_message_bytes;
  /* CRI messages are small and the peer is local: BDP probing (a PING round trip after
     received data, to size flow-control windows) only costs wakeups here. */
  args[2].type = GRPC_ARG_INTEGER;
  args[2].key = GRPC_ARG_HTTP2_BDP_PROBE;
  args[2].value.integer = 0;
  grpc_channel_args channel_args = {3, args};

  s->server = grpc_server_create(&channel_args, NULL);
  s->cq = grpc_completion_queue_create_for_next(NULL);
  s->shutdown_tag = (struct swg_tag){TAG_SERVER_SHUTDOWN, NULL};
  atomic_init(&s->shutting_down, 0);
  atomic_init(&s->live_calls, 0);
  atomic_init(&s->shutdown_seen, 0);
  pthread_rwlock_init(&s->queue_lock, NULL);
  grpc_server_register_completion_queue(s->server, s->cq, NULL);

  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  int port = grpc_server_add_http2_port(s->server, address, creds);
  grpc_server_credentials_release(creds);
  if (port == 0) {
    grpc_server_destroy(s->server);
    grpc_completion_queue_shutdown(s->cq);
    while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(s->cq);
    pthread_rwlock_destroy(&s->queue_lock);
    free(s);
    grpc_shutdown();
    return NULL;
  }
  return s;
}

void swg_server_discard(swg_server *s) {
  /* The core wants a shutdown before destroy once a port was added. */
  atomic_store(&s->shutting_down, 1);
  grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
  grpc_completion_queue_shutdown(s->cq);
  while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_server_destroy(s->server);
  grpc_completion_queue_destroy(s->cq);
  pthread_rwlock_destroy(&s->queue_lock);
  free(s);
  grpc_shutdown();
}

int swg_server_start(swg_server *s, int preposted) {
  if (atomic_load(&s->shutting_down)) {
    return 0; /* shutdown stopped the listeners: starting now would crash the core */
  }
  grpc_server_start(s->server);
  for (int i = 0; i < preposted; i++) {
    request_call(s);
  }
  return 1;
}

static int start_batch(swg_call *c, const grpc_op *ops, size_t n, struct swg_tag *tag) {
  swg_server *s = c->server;
  atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
  pthread_rwlock_rdlock(&s->queue_lock);
  grpc_call_error err = s->queue_shut ? GRPC_CALL_ERROR : grpc_call_start_batch(c->call, ops, n, tag, NULL);
  pthread_rwlock_unlock(&s->queue_lock);
  if (err != GRPC_CALL_OK) {
    call_unref(c);
    return 0;
  }
  return 1;
}

/* The call was accepted: ask for its request and for its end, and accept the next one. */
static void on_call_accepted(swg_server *s, swg_call *c) {
  c->accepted = 1;
  atomic_fetch_add(&s->live_calls, 1);
  if (!atomic_load(&s->shutting_down)) {
    request_call(s);
  }
  grpc_op close_op;
  memset(&close_op, 0, sizeof(close_op));
  close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  close_op.data.recv_close_on_server.cancelled = &c->cancelled;
  if (!start_batch(c, &close_op, 1, &c->close_tag)) {
    c->close_done = 1;
    c->cancelled = 1;
  }
  grpc_op recv_op;
  memset(&recv_op, 0, sizeof(recv_op));
  recv_op.op = GRPC_OP_RECV_MESSAGE;
  recv_op.data.recv_message.recv_message = &c->recv_buffer;
  if (!start_batch(c, &recv_op, 1, &c->recv_tag)) {
    c->recv_done = 1;
  }
}

/* Copies the received byte buffer into one contiguous slice (decompressing if needed). */
static void take_request(swg_call *c) {
  if (c->recv_buffer == NULL) {
    return;
  }
  grpc_byte_buffer_reader reader;
  if (grpc_byte_buffer_reader_init(&reader, c->recv_buffer)) {
    c->request = grpc_byte_buffer_reader_readall(&reader);
    c->has_request = 1;
    grpc_byte_buffer_reader_destroy(&reader);
  }
  grpc_byte_buffer_destroy(c->recv_buffer);
  c->recv_buffer = NULL;
}

void swg_server_next(swg_server *s, swg_event *event) {
  memset(event, 0, sizeof(*event));
  if (s->deferred_unref != NULL) {
    swg_call *c = s->deferred_unref;
    s->deferred_unref = NULL;
    call_unref(c);
  }
  if (s->pending_closed != NULL) {
    swg_call *c = s->pending_closed;
    s->pending_closed = NULL;
    event->kind = SWG_EVENT_CLOSED;
    event->call = c;
    event->ok = 1;
    event->cancelled = c->cancelled;
    return;
  }
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) {
      event->kind = SWG_EVENT_QUEUE_SHUTDOWN;
      return;
    }
    if (ev.type != GRPC_OP_COMPLETE) {
      continue;
    }
    struct swg_tag *tag = ev.tag;
    swg_call *c = tag->call;
    switch (tag->kind) {
    case TAG_SERVER_SHUTDOWN:
      atomic_store(&s->shutdown_seen, 1);
      maybe_shutdown_queue(s);
      event->kind = SWG_EVENT_SERVER_SHUTDOWN;
      event->ok = ev.success;
      return;
    case TAG_REQUEST_CALL:
      if (!ev.success) { /* the server is shutting down: the request is void */
        call_unref(c);
        continue;
      }
      on_call_accepted(s, c);
      if (c->recv_done) { /* nothing could start: report the call without a request */
        event->kind = SWG_EVENT_CALL;
        event->call = c;
        event->ok = 0;
        if (c->close_done) {
          s->pending_closed = c;
        }
        return;
      }
      continue;
    case TAG_RECV_MESSAGE:
      c->recv_done = 1;
      if (ev.success) {
        take_request(c);
      }
      event->kind = SWG_EVENT_CALL;
      event->call = c;
      event->ok = ev.success;
      if (c->close_done) {
        s->pending_closed = c;
      }
      call_unref(c); /* the batch's reference; the owner's keeps it alive */
      return;
    case TAG_RECV_CLOSE:
      c->close_done = 1;
      if (!c->recv_done) { /* the owner has not seen the call yet: CLOSED waits for CALL */
        call_unref(c);
        continue;
      }
      event->kind = SWG_EVENT_CLOSED;
      event->call = c;
      event->ok = ev.success;
      event->cancelled = c->cancelled;
      call_unref(c);
      return;
    case TAG_SEND:
      if (c->send_buffer != NULL) {
        grpc_byte_buffer_destroy(c->send_buffer);
        c->send_buffer = NULL;
      }
      event->kind = SWG_EVENT_SENT;
      event->call = c;
      event->ok = ev.success;
      s->deferred_unref = c; /* dropped on the next swg_server_next */
      return;
    case TAG_FINISH:
      call_unref(c);
      continue;
    }
  }
}

void swg_server_shutdown(swg_server *s) {
  if (atomic_exchange(&s->shutting_down, 1)) {
    return;
  }
  grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
}

void swg_server_cancel_all_calls(swg_server *s) { grpc_server_cancel_all_calls(s->server); }

void swg_server_destroy(swg_server *s) {
  grpc_server_destroy(s->server);
  grpc_completion_queue_destroy(s->cq);
  pthread_rwlock_destroy(&s->queue_lock);
  free(s);
  grpc_shutdown();
}

const char *swg_call_method(const swg_call *c, size_t *length) {
  *length = GRPC_SLICE_LENGTH(c->details.method);
  return (const char *)GRPC_SLICE_START_PTR(c->details.method);
}

const uint8_t *swg_call_request(const swg_call *c, size_t *length) {
  if (!c->has_request) {
    *length = 0;
    return NULL;
  }
  *length = GRPC_SLICE_LENGTH(c->request);
  return GRPC_SLICE_START_PTR(c->request);
}

int64_t swg_call_deadline_remaining_ns(const swg_call *c) {
  gpr_timespec deadline = c->details.deadline;
  if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0) {
    return INT64_MAX;
  }
  gpr_timespec now = gpr_now(deadline.clock_type);
  gpr_timespec left = gpr_time_sub(deadline, now);
  if (left.tv_sec > INT64_MAX / 1000000000 - 1) {
    return INT64_MAX;
  }
  return left.tv_sec * 1000000000 + left.tv_nsec;
}

static grpc_byte_buffer *buffer_from(const uint8_t *bytes, size_t length) {
  grpc_slice slice = grpc_slice_from_copied_buffer((const char *)bytes, length);
  grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  return buffer;
}

int swg_call_send(swg_call *c, const uint8_t *bytes, size_t length) {
  grpc_op ops[2];
  memset(ops, 0, sizeof(ops));
  size_t n = 0;
  int first = !atomic_exchange(&c->sent_initial_metadata, 1);
  if (first) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    n++;
  }
  c->send_buffer = buffer_from(bytes, length);
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n].data.send_message.send_message = c->send_buffer;
  n++;
  if (!start_batch(c, ops, n, &c->send_tag)) {
    grpc_byte_buffer_destroy(c->send_buffer);
    c->send_buffer = NULL;
    if (first) {
      atomic_store(&c->sent_initial_metadata, 0);
    }
    return 0;
  }
  return 1;
}

int swg_call_finish(swg_call *c, const uint8_t *message, size_t length, swg_status_code code,
                    const char *details) {
  grpc_op ops[3];
  memset(ops, 0, sizeof(ops));
  size_t n = 0;
  int first = !atomic_exchange(&c->sent_initial_metadata, 1);
  if (first) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    n++;
  }
  if (message != NULL) {
    c->finish_buffer = buffer_from(message, length);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = c->finish_buffer;
    n++;
  }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = (grpc_status_code)code;
  if (details != NULL && details[0] != '\0') {
    c->status_details = grpc_slice_from_copied_string(details);
    c->has_status_details = 1;
    ops[n].data.send_status_from_server.status_details = &c->status_details;
  }
  n++;
  if (!start_batch(c, ops, n, &c->finish_tag)) {
    if (first) {
      atomic_store(&c->sent_initial_metadata, 0);
    }
    return 0;
  }
  return 1;
}

void swg_call_cancel(swg_call *c) { grpc_call_cancel(c->call, NULL); }

void swg_call_set_user(swg_call *c, void *user) { c->user = user; }

void *swg_call_user(const swg_call *c) { return c->user; }

void swg_call_release(swg_call *c) { call_unref(c); }

/*
 * swiftlet_grpc_client.c — the unary client call behind swiftlet_grpc_client.h.
 *
 * Each call has its own channel and completion queue, polled only by the thread in
 * swg_client_call_run. Two phases share one deadline: connecting (the channel's connectivity
 * state is watched until READY, TRANSIENT_FAILURE or the deadline), then the call (one batch:
 * initial metadata, request, half-close, and the response's metadata, message and status).
 *
 * Cancellation comes from another thread, under the lock: while connecting it wakes the
 * queue with a second connectivity watch whose deadline has passed (it completes at once);
 * during the call it cancels the call. Once the run has ended (`finished`) it does nothing.
 * Whatever is still pending on the queue (a watch outlived by a cancel) completes when the
 * channel is destroyed and is drained before the queue is.
 */
#include "swiftlet_grpc_client.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct swg_client_call {
  grpc_channel *channel;
  grpc_completion_queue *cq;
  grpc_call *call;
  grpc_slice method;
  grpc_byte_buffer *request;

  /* Guards cancelled, finished, ran, and call and channel where swg_client_call_cancel uses them. */
  pthread_mutex_t lock;
  int cancelled;
  int finished;
  int ran;

  /* The batch's outputs. */
  grpc_metadata_array initial_metadata;
  grpc_metadata_array trailing_metadata;
  grpc_byte_buffer *response_buffer;
  grpc_status_code status;
  grpc_slice status_details;

  /* What Swift reads: plain copies, valid until free. */
  swg_client_outcome outcome;
  swg_status_code code;
  char *details;
  uint8_t *response;
  size_t response_length;
  int has_response;

  /* Tags: the addresses of these bytes. */
  char watch_tag, kick_tag, call_tag;
};

swg_client_call *swg_client_call_create(const char *target, const char *method, const uint8_t *request,
                                        size_t length, const char *user_agent) {
  swg_client_call *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    return NULL;
  }
  grpc_init();
  pthread_mutex_init(&c->lock, NULL);
  grpc_metadata_array_init(&c->initial_metadata);
  grpc_metadata_array_init(&c->trailing_metadata);
  c->status_details = grpc_empty_slice();

  grpc_arg args[3];
  size_t n = 0;
  /* A probe must see the target as it is now: no connection (or reconnect backoff) shared
     with other channels to the same address. */
  args[n].type = GRPC_ARG_INTEGER;
  args[n].key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
  args[n].value.integer = 1;
  n++;
  /* Pod addresses are dialled directly, whatever http_proxy/grpc_proxy say. */
  args[n].type = GRPC_ARG_INTEGER;
  args[n].key = GRPC_ARG_ENABLE_HTTP_PROXY;
  args[n].value.integer = 0;
  n++;
  if (user_agent != NULL && user_agent[0] != '\0') {
    args[n].type = GRPC_ARG_STRING;
    args[n].key = GRPC_ARG_PRIMARY_USER_AGENT_STRING;
    args[n].value.string = (char *)user_agent; /* copied by the core */
    n++;
  }
  grpc_channel_args channel_args = {n, args};
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  c->channel = grpc_channel_create(target, creds, &channel_args);
  grpc_channel_credentials_release(creds);
  c->cq = grpc_completion_queue_create_for_next(NULL);

  c->method = grpc_slice_from_copied_string(method);
  grpc_slice payload = grpc_slice_from_copied_buffer((const char *)request, length);
  c->request = grpc_raw_byte_buffer_create(&payload, 1);
  grpc_slice_unref(payload);

  c->outcome = SWG_CLIENT_CANCELLED;
  c->code = SWG_STATUS_CANCELLED;
  return c;
}

static void set_result(swg_client_call *c, swg_client_outcome outcome, swg_status_code code, const char *details,
                       size_t details_length) {
  c->outcome = outcome;
  c->code = code;
  free(c->details);
  c->details = malloc(details_length + 1);
  if (c->details != NULL) {
    memcpy(c->details, details, details_length);
    c->details[details_length] = '\0';
  }
}

static void set_message(swg_client_call *c, swg_client_outcome outcome, swg_status_code code, const char *details) {
  set_result(c, outcome, code, details, strlen(details));
}

/* Ends the run: no more cancels reach the channel or call; everything on the queue drains. */
static void finish_run(swg_client_call *c) {
  pthread_mutex_lock(&c->lock);
  c->finished = 1;
  pthread_mutex_unlock(&c->lock);
  if (c->call != NULL) {
    grpc_call_unref(c->call);
    c->call = NULL;
  }
  grpc_channel_destroy(c->channel); /* completes a watch still pending */
  c->channel = NULL;
  grpc_completion_queue_shutdown(c->cq);
  while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(c->cq);
  c->cq = NULL;
}

/* Waits for the tag `want`; a cancel's wake-up ends the wait early (returns 0). */
static int wait_for(swg_client_call *c, void *want, int *success) {
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type != GRPC_OP_COMPLETE) {
      continue;
    }
    if (ev.tag == want) {
      *success = ev.success;
      return 1;
    }
    if (ev.tag == &c->kick_tag) {
      return 0;
    }
  }
}

/* Phase one: watches the channel until it is ready, has failed, or the deadline passes.
   Returns the outcome so far: COMPLETED (go on with the call, *failed set if the attempt
   failed), CONNECT_TIMEOUT or CANCELLED. */
static swg_client_outcome connect_channel(swg_client_call *c, gpr_timespec deadline, int *failed) {
  grpc_connectivity_state state = grpc_channel_check_connectivity_state(c->channel, 1);
  for (;;) {
    if (state == GRPC_CHANNEL_READY) {
      return SWG_CLIENT_COMPLETED;
    }
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      /* The call fails at once on such a channel, with the connection's error as its
         details: that is how the reason reaches the caller. */
      *failed = 1;
      return SWG_CLIENT_COMPLETED;
    }
    pthread_mutex_lock(&c->lock);
    int cancelled = c->cancelled;
    if (!cancelled) {
      grpc_channel_watch_connectivity_state(c->channel, state, deadline, c->cq, &c->watch_tag);
    }
    pthread_mutex_unlock(&c->lock);
    int changed = 0;
    if (cancelled || !wait_for(c, &c->watch_tag, &changed)) {
      return SWG_CLIENT_CANCELLED;
    }
    if (!changed) {
      return SWG_CLIENT_CONNECT_TIMEOUT;
    }
    state = grpc_channel_check_connectivity_state(c->channel, 1);
  }
}

/* Phase two: the call itself, in one batch. Returns 0 if cancelled before it started. */
static int run_call(swg_client_call *c, gpr_timespec deadline) {
  grpc_op ops[6];
  memset(ops, 0, sizeof(ops));
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = c->request;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->initial_metadata;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &c->response_buffer;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &c->trailing_metadata;
  ops[5].data.recv_status_on_client.status = &c->status;
  ops[5].data.recv_status_on_client.status_details = &c->status_details;

  pthread_mutex_lock(&c->lock);
  if (c->cancelled) {
    pthread_mutex_unlock(&c->lock);
    return 0;
  }
  c->call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, c->method, NULL, deadline,
                                     NULL);
  grpc_call_error err = grpc_call_start_batch(c->call, ops, 6, &c->call_tag, NULL);
  pthread_mutex_unlock(&c->lock);
  if (err != GRPC_CALL_OK) {
    c->status = GRPC_STATUS_INTERNAL;
    grpc_slice_unref(c->status_details);
    c->status_details = grpc_slice_from_static_string("the gRPC core refused the call's batch");
    return 1;
  }
  /* The batch always completes (cancelled, at the deadline at the latest). */
  int success = 0;
  while (!wait_for(c, &c->call_tag, &success)) {
  }
  return 1;
}

static void take_response(swg_client_call *c) {
  if (c->response_buffer == NULL) {
    return;
  }
  grpc_byte_buffer_reader reader;
  if (grpc_byte_buffer_reader_init(&reader, c->response_buffer)) {
    grpc_slice slice = grpc_byte_buffer_reader_readall(&reader);
    size_t length = GRPC_SLICE_LENGTH(slice);
    c->response = malloc(length > 0 ? length : 1);
    if (c->response != NULL) {
      memcpy(c->response, GRPC_SLICE_START_PTR(slice), length);
      c->response_length = length;
      c->has_response = 1;
    }
    grpc_slice_unref(slice);
    grpc_byte_buffer_reader_destroy(&reader);
  }
  grpc_byte_buffer_destroy(c->response_buffer);
  c->response_buffer = NULL;
}

void swg_client_call_run(swg_client_call *c, int64_t timeout_ns) {
  pthread_mutex_lock(&c->lock);
  int again = c->ran, cancelled_early = c->cancelled;
  c->ran = 1;
  pthread_mutex_unlock(&c->lock);
  if (again) {
    return;
  }
  if (cancelled_early) {
    set_message(c, SWG_CLIENT_CANCELLED, SWG_STATUS_CANCELLED, "cancelled");
    finish_run(c);
    return;
  }
  gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                       gpr_time_from_nanos(timeout_ns > 0 ? timeout_ns : 0, GPR_TIMESPAN));
  int failed = 0;
  swg_client_outcome outcome = connect_channel(c, deadline, &failed);
  if (outcome == SWG_CLIENT_CONNECT_TIMEOUT) {
    set_message(c, outcome, SWG_STATUS_DEADLINE_EXCEEDED, "no connection within the deadline");
  } else if (outcome == SWG_CLIENT_CANCELLED || !run_call(c, deadline)) {
    set_message(c, SWG_CLIENT_CANCELLED, SWG_STATUS_CANCELLED, "cancelled");
  } else {
    pthread_mutex_lock(&c->lock);
    int cancelled = c->cancelled;
    pthread_mutex_unlock(&c->lock);
    if (cancelled && c->status == GRPC_STATUS_CANCELLED) {
      outcome = SWG_CLIENT_CANCELLED;
    } else if (failed && c->status == GRPC_STATUS_UNAVAILABLE) {
      outcome = SWG_CLIENT_CONNECT_FAILED;
    }
    set_result(c, outcome, (swg_status_code)c->status, (const char *)GRPC_SLICE_START_PTR(c->status_details),
               GRPC_SLICE_LENGTH(c->status_details));
    if (c->status == GRPC_STATUS_OK) {
      take_response(c);
    }
  }
  finish_run(c);
}

void swg_client_call_cancel(swg_client_call *c) {
  pthread_mutex_lock(&c->lock);
  if (!c->cancelled && !c->finished) {
    c->cancelled = 1;
    if (c->call != NULL) {
      grpc_call_cancel(c->call, NULL);
    } else if (c->ran) {
      /* Connecting: a watch whose deadline has passed completes at once and wakes the run. */
      grpc_channel_watch_connectivity_state(c->channel, GRPC_CHANNEL_SHUTDOWN, gpr_inf_past(GPR_CLOCK_MONOTONIC),
                                            c->cq, &c->kick_tag);
    }
  }
  pthread_mutex_unlock(&c->lock);
}

swg_client_outcome swg_client_call_outcome(const swg_client_call *c) { return c->outcome; }

swg_status_code swg_client_call_status(const swg_client_call *c) { return c->code; }

const char *swg_client_call_details(const swg_client_call *c) { return c->details != NULL ? c->details : ""; }

const uint8_t *swg_client_call_response(const swg_client_call *c, size_t *length) {
  *length = c->has_response ? c->response_length : 0;
  return c->has_response ? c->response : NULL;
}

void swg_client_call_free(swg_client_call *c) {
  if (c->cq != NULL) { /* never ran */
    finish_run(c);
  }
  if (c->response_buffer != NULL) {
    grpc_byte_buffer_destroy(c->response_buffer);
  }
  grpc_metadata_array_destroy(&c->initial_metadata);
  grpc_metadata_array_destroy(&c->trailing_metadata);
  grpc_slice_unref(c->status_details);
  grpc_slice_unref(c->method);
  grpc_byte_buffer_destroy(c->request);
  pthread_mutex_destroy(&c->lock);
  free(c->details);
  free(c->response);
  free(c);
  grpc_shutdown();
}

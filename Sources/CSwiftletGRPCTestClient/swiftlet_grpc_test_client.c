#include "swiftlet_grpc_test_client.h"

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include <stdlib.h>
#include <string.h>

struct swgt_stream {
  grpc_channel *channel;
  grpc_completion_queue *cq;
  grpc_call *call;
  grpc_byte_buffer *request;
};

swgt_stream *swgt_stalled_stream_start(const char *address, const char *method) {
  grpc_init();
  swgt_stream *s = calloc(1, sizeof(*s));
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  s->channel = grpc_channel_create(address, creds, NULL);
  grpc_channel_credentials_release(creds);
  s->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_slice path = grpc_slice_from_copied_string(method);
  s->call = grpc_channel_create_call(s->channel, NULL, 0, s->cq, path, NULL,
                                     gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  grpc_slice_unref(path);
  grpc_slice payload = grpc_slice_from_static_string("x");
  s->request = grpc_raw_byte_buffer_create(&payload, 1);
  grpc_op ops[3];
  memset(ops, 0, sizeof(ops));
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = s->request;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  grpc_call_start_batch(s->call, ops, 3, (void *)1, NULL);
  grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  return s;
}

void swgt_stalled_stream_close(swgt_stream *s) {
  grpc_call_cancel(s->call, NULL);
  grpc_call_unref(s->call);
  grpc_byte_buffer_destroy(s->request);
  grpc_channel_destroy(s->channel);
  grpc_completion_queue_shutdown(s->cq);
  while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(s->cq);
  free(s);
  grpc_shutdown();
}

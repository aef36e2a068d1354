/*
 * A minimal gRPC C-core client for the bridge's own tests: it does what well-behaved clients
 * do not (stall a stream), so the server's hard paths can be driven from Swift Testing.
 */
#ifndef SWIFTLET_GRPC_TEST_CLIENT_H
#define SWIFTLET_GRPC_TEST_CLIENT_H

typedef struct swgt_stream swgt_stream;

/* Starts a server-streaming call to method on address ("unix:/path"), sends one request,
   and never reads a response, so the server's sends block on flow control. */
swgt_stream *swgt_stalled_stream_start(const char *address, const char *method);

/* Cancels the call and frees the client. */
void swgt_stalled_stream_close(swgt_stream *stream);

#endif

/*
 * CSwiftletStreaming.h — the C the streaming server needs: per-direction zlib streams with
 * the SPDY/3 header dictionary, SHA-1 for the WebSocket accept key (OpenSSL libcrypto),
 * loopback TCP listeners and eventfd wake-ups. Opaque handles only; no C type reaches a
 * public Swift signature.
 */
#ifndef CSWIFTLET_STREAMING_H
#define CSWIFTLET_STREAMING_H

#include <stddef.h>
#include <stdint.h>

/* MARK: SPDY/3 header compression */

typedef struct sws_zstream sws_zstream;

/* A compressor (deflate, best compression) or decompressor (inflate) primed with the SPDY/3
   dictionary; NULL when out of memory. Each SPDY connection has one of each. */
sws_zstream *sws_zstream_new(int compress);
void sws_zstream_free(sws_zstream *stream);

/* Compresses one header block and flushes it (Z_SYNC_FLUSH), or decompresses one block's
   bytes. On success returns 0 and a malloc'ed buffer in *output (free with sws_free) of
   *output_length bytes; -1 when the data is corrupt or inflates past max_output (the
   stream is then unusable). */
int sws_zstream_run(sws_zstream *stream, const uint8_t *input, size_t input_length, size_t max_output,
                    uint8_t **output, size_t *output_length);
void sws_free(void *pointer);

/* MARK: WebSocket */

/* SHA-1 of data into digest. */
void sws_sha1(const uint8_t *data, size_t length, uint8_t digest[20]);

/* MARK: Sockets */

/* A non-blocking, close-on-exec TCP listener on the IPv4 or IPv6 literal host and port (0:
   any free port); the port bound in *bound_port. -errno on failure (-EINVAL: bad host). */
int sws_listen_tcp(const char *host, int port, int backlog, int *bound_port);

/* accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC, retrying EINTR; -errno on failure. */
int sws_accept(int listener);

/* A non-blocking, close-on-exec eventfd; -errno on failure. */
int sws_wakefd_new(void);
/* Adds one to the eventfd (wakes a poller). */
void sws_wakefd_signal(int fd);
/* Resets the eventfd to zero. */
void sws_wakefd_drain(int fd);

/* fcntl(F_SETFL, O_NONBLOCK); -errno on failure. */
int sws_set_nonblocking(int fd);

/* pipe2(O_CLOEXEC); -errno on failure. */
int sws_pipe(int fds[2]);

/* Blocks SIGPIPE in the calling thread: writes to a pipe whose reader is gone fail with EPIPE
   and leave the signal pending on this thread, which sws_clear_sigpipe() consumes. */
void sws_block_sigpipe(void);
void sws_clear_sigpipe(void);

/* Names the calling thread (15 bytes at most are kept). */
void sws_name_thread(const char *name);

#endif

/*
 * swiftlet_http.h — one HTTP request through libcurl (Debian libcurl4-openssl-dev): TLS with
 * the system CAs (or none verified, for registries configured so), redirects followed without
 * carrying Authorization to another host, the body streamed to a callback.
 */
#ifndef SWIFTLET_HTTP_H
#define SWIFTLET_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* Receives body bytes; returns 0 to abort the transfer. */
typedef int (*swh_body_fn)(void *context, const uint8_t *data, size_t length);

/* Performs one request. headers are "Name: value" strings. On return *status is the final
   HTTP status (0 if none), *response_headers the final response's header block (free with
   swh_free). Returns 0 on a completed exchange, -1 with a message in error otherwise. */
int swh_perform(const char *method, const char *url, const char *const *headers, size_t header_count,
                int skip_verify, long timeout_seconds, swh_body_fn body, void *context, long *status,
                char **response_headers, char *error, size_t error_length);

void swh_free(void *pointer);

/* --- Requests with TLS credentials, a request body, every status's body, and cancellation ---
 *
 * swh_perform above stays as the registry client uses it. The calls below serve the Kubernetes
 * API client: client certificates and keys (PEM files or PEM blobs), a CA (file or blob), a
 * request body, response bodies for every status (so 4xx/5xx Status objects can be decoded),
 * and a transfer handle that another thread can cancel at any time (for endless watches). */

/* One request. Every pointer is borrowed for the duration of swh_transfer_perform; NULL (or a
   zero length) leaves the option unset. */
typedef struct swh_request {
  const char *method;
  const char *url;
  const char *const *headers; /* "Name: value" strings */
  size_t header_count;
  const uint8_t *body; /* sent as is (Content-Type is a header); NULL for none */
  size_t body_length;
  const char *ca_file;         /* CURLOPT_CAINFO */
  const uint8_t *ca_blob;      /* CURLOPT_CAINFO_BLOB (PEM) */
  size_t ca_blob_length;
  const char *cert_file;       /* CURLOPT_SSLCERT (PEM) */
  const uint8_t *cert_blob;    /* CURLOPT_SSLCERT_BLOB (PEM) */
  size_t cert_blob_length;
  const char *key_file;        /* CURLOPT_SSLKEY (PEM) */
  const uint8_t *key_blob;     /* CURLOPT_SSLKEY_BLOB (PEM) */
  size_t key_blob_length;
  int skip_verify;             /* no peer or host verification */
  int follow_redirects;
  long timeout_seconds;        /* whole transfer; 0 for none (watches) */
  long connect_timeout_seconds;/* 0 for libcurl's default */
  long stall_seconds;          /* fail when nothing arrives for this long; 0 for never */
} swh_request;

/* An opaque transfer: made on one thread, performed once, cancellable from any thread. */
typedef struct swh_transfer swh_transfer;

swh_transfer *swh_transfer_new(void);
/* Ends a running swh_transfer_perform promptly (it returns -2), or makes a later one return -2
   at once. Safe from any thread, any number of times, until swh_transfer_free. */
void swh_transfer_cancel(swh_transfer *transfer);
/* Frees the handle; call only after swh_transfer_perform has returned (or was never called). */
void swh_transfer_free(swh_transfer *transfer);

/* Performs the request, delivering body bytes of every response status to body (returning 0
   from it aborts the transfer: -2). *status is the HTTP status (0 if none arrived; it is set
   before the first body byte is delivered, readable through swh_transfer_status),
   *response_headers the final header block (free with swh_free). Returns 0 on a completed
   exchange, -2 when cancelled or aborted by the body callback, -1 with a message in error
   otherwise. */
int swh_transfer_perform(swh_transfer *transfer, const swh_request *request, swh_body_fn body, void *context,
                         long *status, char **response_headers, char *error, size_t error_length);

/* The HTTP status of the response being received (0 before the status line); for the body
   callback of swh_transfer_perform. */
long swh_transfer_status(swh_transfer *transfer);

#endif

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

#endif

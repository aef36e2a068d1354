#include "swiftlet_http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

struct headers_buffer {
  char *data;
  size_t length;
};

static size_t on_header(char *buffer, size_t size, size_t count, void *user) {
  struct headers_buffer *headers = user;
  size_t length = size * count;
  /* A new status line starts a new response (after a redirect or a 100): keep the last. */
  if (length >= 5 && strncmp(buffer, "HTTP/", 5) == 0) headers->length = 0;
  char *grown = realloc(headers->data, headers->length + length + 1);
  if (grown == NULL) return 0;
  headers->data = grown;
  memcpy(headers->data + headers->length, buffer, length);
  headers->length += length;
  headers->data[headers->length] = '\0';
  return length;
}

struct body_sink {
  swh_body_fn body;
  void *context;
  CURL *curl;
};

static size_t on_body(char *data, size_t size, size_t count, void *user) {
  struct body_sink *sink = user;
  size_t length = size * count;
  /* Only a successful response's body reaches the sink: a 500 page must not land in a blob. */
  long status = 0;
  curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &status);
  if (sink->body == NULL || status < 200 || status >= 300) return length;
  return sink->body(sink->context, (const uint8_t *)data, length) ? length : 0;
}

int swh_perform(const char *method, const char *url, const char *const *headers, size_t header_count,
                int skip_verify, long timeout_seconds, swh_body_fn body, void *context, long *status,
                char **response_headers, char *error, size_t error_length) {
  pthread_once(&once, global_init);
  *status = 0;
  *response_headers = NULL;
  CURL *curl = curl_easy_init();
  if (curl == NULL) {
    snprintf(error, error_length, "cannot create a curl handle");
    return -1;
  }
  struct curl_slist *list = NULL;
  for (size_t i = 0; i < header_count; i++) list = curl_slist_append(list, headers[i]);
  struct headers_buffer received = {NULL, 0};
  struct body_sink sink = {body, context, curl};
  char message[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  if (strcmp(method, "HEAD") == 0) curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl, CURLOPT_UNRESTRICTED_AUTH, 0L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  if (timeout_seconds > 0) curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_seconds);
  /* A stalled transfer (under 1 KiB/s for 60 s) fails rather than hangs. */
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &received);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, message);
  if (getenv("SWIFTLET_HTTP_DEBUG")) curl_easy_setopt(curl, CURLOPT_VERBOSE, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "swiftlet/0.1 (containerd-compatible)");
  if (skip_verify) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  CURLcode result = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  *response_headers = received.data;
  if (result != CURLE_OK) {
    snprintf(error, error_length, "%s", message[0] ? message : curl_easy_strerror(result));
    return -1;
  }
  return 0;
}

void swh_free(void *pointer) { free(pointer); }

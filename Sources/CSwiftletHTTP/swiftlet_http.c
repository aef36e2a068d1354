#include "swiftlet_http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
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

/* --- swh_transfer: the Kubernetes API client's requests (see the header) --- */

struct swh_transfer {
  CURLM *multi;
  CURL *easy; /* while performing */
  atomic_int cancelled;
};

swh_transfer *swh_transfer_new(void) {
  pthread_once(&once, global_init);
  swh_transfer *transfer = calloc(1, sizeof *transfer);
  if (transfer == NULL) return NULL;
  transfer->multi = curl_multi_init();
  if (transfer->multi == NULL) {
    free(transfer);
    return NULL;
  }
  atomic_init(&transfer->cancelled, 0);
  return transfer;
}

void swh_transfer_cancel(swh_transfer *transfer) {
  if (transfer == NULL) return;
  atomic_store(&transfer->cancelled, 1);
  curl_multi_wakeup(transfer->multi); /* thread-safe by design: ends a curl_multi_poll */
}

void swh_transfer_free(swh_transfer *transfer) {
  if (transfer == NULL) return;
  curl_multi_cleanup(transfer->multi);
  free(transfer);
}

long swh_transfer_status(swh_transfer *transfer) {
  long status = 0;
  if (transfer != NULL && transfer->easy != NULL) curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

struct transfer_sink {
  swh_body_fn body;
  void *context;
  swh_transfer *transfer;
  int aborted;
};

static size_t on_transfer_body(char *data, size_t size, size_t count, void *user) {
  struct transfer_sink *sink = user;
  size_t length = size * count;
  if (atomic_load(&sink->transfer->cancelled)) {
    sink->aborted = 1;
    return 0;
  }
  if (sink->body == NULL || length == 0) return length;
  if (!sink->body(sink->context, (const uint8_t *)data, length)) {
    sink->aborted = 1;
    return 0;
  }
  return length;
}

static void set_blob(CURL *curl, CURLoption option, const uint8_t *data, size_t length) {
  struct curl_blob blob = {(void *)data, length, CURL_BLOB_COPY};
  curl_easy_setopt(curl, option, &blob);
}

int swh_transfer_perform(swh_transfer *transfer, const swh_request *request, swh_body_fn body, void *context,
                         long *status, char **response_headers, char *error, size_t error_length) {
  *status = 0;
  *response_headers = NULL;
  if (error_length > 0) error[0] = '\0';
  if (atomic_load(&transfer->cancelled)) {
    snprintf(error, error_length, "cancelled");
    return -2;
  }
  CURL *curl = curl_easy_init();
  if (curl == NULL) {
    snprintf(error, error_length, "cannot create a curl handle");
    return -1;
  }
  struct curl_slist *list = NULL;
  for (size_t i = 0; i < request->header_count; i++) list = curl_slist_append(list, request->headers[i]);
  struct headers_buffer received = {NULL, 0};
  struct transfer_sink sink = {body, context, transfer, 0};
  char message[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, request->url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request->method);
  if (strcmp(request->method, "HEAD") == 0) curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  if (request->body != NULL) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request->body_length);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, (const char *)request->body);
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  if (request->follow_redirects) {
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(curl, CURLOPT_UNRESTRICTED_AUTH, 0L);
  }
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, request->connect_timeout_seconds > 0 ? request->connect_timeout_seconds : 30L);
  if (request->timeout_seconds > 0) curl_easy_setopt(curl, CURLOPT_TIMEOUT, request->timeout_seconds);
  if (request->stall_seconds > 0) {
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, request->stall_seconds);
  }
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &received);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_transfer_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, message);
  if (getenv("SWIFTLET_HTTP_DEBUG")) curl_easy_setopt(curl, CURLOPT_VERBOSE, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "swiftlet/0.1");
  if (request->ca_blob != NULL && request->ca_blob_length > 0)
    set_blob(curl, CURLOPT_CAINFO_BLOB, request->ca_blob, request->ca_blob_length);
  else if (request->ca_file != NULL)
    curl_easy_setopt(curl, CURLOPT_CAINFO, request->ca_file);
  if (request->cert_blob != NULL && request->cert_blob_length > 0)
    set_blob(curl, CURLOPT_SSLCERT_BLOB, request->cert_blob, request->cert_blob_length);
  else if (request->cert_file != NULL)
    curl_easy_setopt(curl, CURLOPT_SSLCERT, request->cert_file);
  if (request->key_blob != NULL && request->key_blob_length > 0)
    set_blob(curl, CURLOPT_SSLKEY_BLOB, request->key_blob, request->key_blob_length);
  else if (request->key_file != NULL)
    curl_easy_setopt(curl, CURLOPT_SSLKEY, request->key_file);
  if (request->skip_verify) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }

  transfer->easy = curl;
  CURLcode result = CURLE_OK;
  int done = 0;
  CURLMcode added = curl_multi_add_handle(transfer->multi, curl);
  if (added != CURLM_OK) {
    snprintf(message, sizeof message, "%s", curl_multi_strerror(added));
    result = CURLE_FAILED_INIT;
    done = 1;
  }
  while (!done) {
    int running = 0;
    CURLMcode code = curl_multi_perform(transfer->multi, &running);
    if (code != CURLM_OK) {
      snprintf(message, sizeof message, "%s", curl_multi_strerror(code));
      result = CURLE_FAILED_INIT;
      break;
    }
    CURLMsg *info;
    int queued;
    while ((info = curl_multi_info_read(transfer->multi, &queued)) != NULL) {
      if (info->msg == CURLMSG_DONE && info->easy_handle == curl) {
        result = info->data.result;
        done = 1;
      }
    }
    if (done || running == 0) {
      done = 1;
      break;
    }
    if (atomic_load(&transfer->cancelled)) {
      sink.aborted = 1;
      break;
    }
    code = curl_multi_poll(transfer->multi, NULL, 0, 1000, NULL);
    if (code != CURLM_OK) {
      snprintf(message, sizeof message, "%s", curl_multi_strerror(code));
      result = CURLE_FAILED_INIT;
      break;
    }
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
  if (added == CURLM_OK) curl_multi_remove_handle(transfer->multi, curl);
  transfer->easy = NULL;
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  *response_headers = received.data;
  if (sink.aborted) {
    snprintf(error, error_length, "cancelled");
    return -2;
  }
  if (result != CURLE_OK) {
    snprintf(error, error_length, "%s", message[0] ? message : curl_easy_strerror(result));
    return -1;
  }
  return 0;
}

#define _GNU_SOURCE 1
#include "swiftlet_archive.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>

struct swa_sha256 {
  EVP_MD_CTX *context;
};

swa_sha256 *swa_sha256_new(void) {
  swa_sha256 *hash = calloc(1, sizeof(*hash));
  if (hash == NULL) return NULL;
  hash->context = EVP_MD_CTX_new();
  if (hash->context == NULL || EVP_DigestInit_ex(hash->context, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(hash->context);
    free(hash);
    return NULL;
  }
  return hash;
}

void swa_sha256_update(swa_sha256 *hash, const void *data, size_t length) {
  EVP_DigestUpdate(hash->context, data, length);
}

void swa_sha256_final(swa_sha256 *hash, uint8_t digest[32]) {
  unsigned int length = 32;
  EVP_DigestFinal_ex(hash->context, digest, &length);
}

void swa_sha256_free(swa_sha256 *hash) {
  if (hash == NULL) return;
  EVP_MD_CTX_free(hash->context);
  free(hash);
}

struct swa_inflate {
  z_stream stream;
};

swa_inflate *swa_inflate_new(void) {
  swa_inflate *state = calloc(1, sizeof(*state));
  if (state == NULL) return NULL;
  /* 15 + 32: a gzip or zlib header, detected. */
  if (inflateInit2(&state->stream, 15 + 32) != Z_OK) {
    free(state);
    return NULL;
  }
  return state;
}

int swa_inflate_run(swa_inflate *state, const uint8_t *input, size_t input_length, size_t *consumed,
                    uint8_t *output, size_t output_capacity, size_t *produced) {
  state->stream.next_in = (Bytef *)input;
  state->stream.avail_in = (uInt)input_length;
  state->stream.next_out = output;
  state->stream.avail_out = (uInt)output_capacity;
  int result = inflate(&state->stream, Z_NO_FLUSH);
  *consumed = input_length - state->stream.avail_in;
  *produced = output_capacity - state->stream.avail_out;
  if (result == Z_STREAM_END) {
    /* Concatenated gzip members (pigz, some registries): go on with the next one. */
    if (state->stream.avail_in > 0 && inflateReset(&state->stream) == Z_OK) return 0;
    return 1;
  }
  if (result == Z_OK || result == Z_BUF_ERROR) return 0;
  return -1;
}

void swa_inflate_free(swa_inflate *state) {
  if (state == NULL) return;
  inflateEnd(&state->stream);
  free(state);
}

int swa_open_in_root(int root, const char *path, int flags, mode_t mode) {
  struct open_how how;
  memset(&how, 0, sizeof(how));
  how.flags = (unsigned long long)(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  while (*path == '/') path++;
  if (*path == '\0') path = ".";
  return (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
}

int swa_set_xattr(const char *path, const char *name, const void *value, size_t size) {
  return lsetxattr(path, name, value, size, 0);
}

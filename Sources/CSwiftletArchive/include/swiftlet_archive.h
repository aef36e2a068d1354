/*
 * swiftlet_archive.h — the C the image store needs: SHA-256 (OpenSSL libcrypto, with the
 * CPU's SHA extensions where present), gzip inflation (zlib), and openat2 confined to a root.
 * Opaque handles only.
 */
#ifndef SWIFTLET_ARCHIVE_H
#define SWIFTLET_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* O_PATH, which Glibc's Swift overlay does not export (it is _GNU_SOURCE-only). */
#define SWA_O_PATH 010000000

typedef struct swa_sha256 swa_sha256;

swa_sha256 *swa_sha256_new(void);
void swa_sha256_update(swa_sha256 *hash, const void *data, size_t length);
/* Writes the 32-byte digest; the hash can then only be freed. */
void swa_sha256_final(swa_sha256 *hash, uint8_t digest[32]);
void swa_sha256_free(swa_sha256 *hash);

typedef struct swa_inflate swa_inflate;

/* A gzip (or zlib) decoder. */
swa_inflate *swa_inflate_new(void);
/* Decodes from input into output. Returns 1 at the end of the stream, 0 when it needs more
   input or more output room, -1 on corrupt data. */
int swa_inflate_run(swa_inflate *state, const uint8_t *input, size_t input_length, size_t *consumed,
                    uint8_t *output, size_t output_capacity, size_t *produced);
void swa_inflate_free(swa_inflate *state);

/* openat2(root, path, flags, mode) with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: path and its
   symlinks resolve inside root. -1 and errno on failure. */
int swa_open_in_root(int root, const char *path, int flags, mode_t mode);

/* lsetxattr without the variadic-free Swift trouble; -1 and errno. */
int swa_set_xattr(const char *path, const char *name, const void *value, size_t size);

#endif

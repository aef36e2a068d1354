/*
 * swiftlet_tls_csr.h — the kubelet's client-certificate bootstrap on OpenSSL 3: its ECDSA P-256
 * key, the PKCS #10 request the API server's CSR API takes, the checks client-go makes before
 * it reuses a request, and certificate validity for rotation.
 *
 * Every buffer returned through an `unsigned char **` is allocated here and belongs to the
 * caller, who frees it with swt_csr_free (which wipes it first: keys pass through here).
 * Functions taking (char *error, size_t error_size) write a NUL-terminated message there when
 * they fail.
 */
#ifndef SWIFTLET_TLS_CSR_H
#define SWIFTLET_TLS_CSR_H

#include <stddef.h>

/* Wipes and frees a buffer this file returned (NULL is ignored). */
void swt_csr_free(unsigned char *buffer, size_t length);

/* A new ECDSA P-256 private key as SEC 1 PEM ("EC PRIVATE KEY"), as client-go's keyutil
   makes the kubelet's client key. 0 on success, -1 on failure. */
int swt_csr_generate_key(unsigned char **key_pem, size_t *key_length, char *error, size_t error_size);

/* The first private key in pem (blocks of other kinds, e.g. certificates, are skipped),
   re-encoded as traditional PEM ("EC PRIVATE KEY", "RSA PRIVATE KEY") as keyutil's
   MarshalPrivateKeyToPEM does. 0 on success, -1 when there is no usable key. */
int swt_csr_load_key(const unsigned char *pem, size_t length, unsigned char **key_pem, size_t *key_length, char *error,
                     size_t error_size);

/* A PKCS #10 request signed with key_pem's key (SHA-256), as Go's x509.CreateCertificateRequest
   makes client-go's: subject O=<each organization>, CN=<common_name> (Go's RDN order; a
   PrintableString when the value allows one, else a UTF8String), no attributes. The request as
   PEM ("CERTIFICATE REQUEST") in *csr_pem, the key's SubjectPublicKeyInfo (DER, as Go's
   x509.MarshalPKIXPublicKey) in *public_key_der. 0 on success, -1 on failure. */
int swt_csr_create(const unsigned char *key_pem, size_t key_length, const char *common_name,
                   const char *const *organizations, size_t organization_count, unsigned char **csr_pem,
                   size_t *csr_length, unsigned char **public_key_der, size_t *public_key_length, char *error,
                   size_t error_size);

/* client-go's ensureCompatible: whether an existing request (existing_pem) may stand for ours
   (ours_pem, made with key_pem): the subjects are equal, the existing request carries key's
   public key and its signature verifies. 1 compatible, 0 not (the reason in error), -1 when a
   PEM cannot be parsed. */
int swt_csr_compatible(const unsigned char *existing_pem, size_t existing_length, const unsigned char *ours_pem,
                       size_t ours_length, const unsigned char *key_pem, size_t key_length, char *error,
                       size_t error_size);

/* Whether the first certificate in cert_pem holds key_pem's public key. 1 yes, 0 no, -1 when
   either cannot be parsed. */
int swt_csr_certificate_matches_key(const unsigned char *cert_pem, size_t cert_length, const unsigned char *key_pem,
                                    size_t key_length, char *error, size_t error_size);

/* The validity of each certificate in pem, in order (blocks of other kinds skipped): the first
   `capacity` entries go to not_before and not_after as Unix seconds. Returns how many
   certificates there are (may exceed capacity); -1 when there is none or one is malformed. */
int swt_csr_certificate_validity(const unsigned char *pem, size_t length, long long *not_before, long long *not_after,
                                 size_t capacity, char *error, size_t error_size);

/* SHA-512/256 (FIPS 180-4) of data into digest (32 bytes), the hash behind the kubelet's CSR
   names. 0 on success, -1 on failure. */
int swt_csr_sha512_256(const unsigned char *data, size_t length, unsigned char *digest);

#endif

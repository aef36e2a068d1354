#define _GNU_SOURCE
#include "swiftlet_tls_csr.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* "<what>: <OpenSSL's last queued error>" (or "<what>" alone); the queue is cleared. */
static void describe(char *error, size_t size, const char *what) {
    if (!error || size == 0) return;
    unsigned long code = ERR_peek_last_error();
    if (code != 0) {
        char text[200];
        ERR_error_string_n(code, text, sizeof text);
        snprintf(error, size, "%s: %s", what, text);
    } else {
        snprintf(error, size, "%s", what);
    }
    ERR_clear_error();
}

/* Never prompts for a passphrase: encrypted keys are refused. */
static int no_passphrase(char *buffer, int size, int writing, void *context) {
    (void)buffer;
    (void)size;
    (void)writing;
    (void)context;
    return -1;
}

static BIO *read_bio(const unsigned char *data, size_t length) {
    if (!data || length == 0 || length > 0x7fffffff) return NULL;
    return BIO_new_mem_buf(data, (int)length);
}

/* The first private key in pem, other blocks skipped; NULL when none. */
static EVP_PKEY *read_key(const unsigned char *pem, size_t length) {
    BIO *bio = read_bio(pem, length);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
    BIO_free(bio);
    return key;
}

static X509_REQ *read_request(const unsigned char *pem, size_t length) {
    BIO *bio = read_bio(pem, length);
    X509_REQ *request = bio ? PEM_read_bio_X509_REQ(bio, NULL, no_passphrase, NULL) : NULL;
    BIO_free(bio);
    return request;
}

/* A memory BIO's contents copied into a new buffer the caller owns. */
static int take(BIO *bio, unsigned char **out, size_t *length) {
    char *data = NULL;
    long size = BIO_get_mem_data(bio, &data);
    if (size <= 0) return 0;
    unsigned char *copy = malloc((size_t)size);
    if (!copy) return 0;
    memcpy(copy, data, (size_t)size);
    *out = copy;
    *length = (size_t)size;
    return 1;
}

void swt_csr_free(unsigned char *buffer, size_t length) {
    if (!buffer) return;
    OPENSSL_cleanse(buffer, length);
    free(buffer);
}

int swt_csr_generate_key(unsigned char **key_pem, size_t *key_length, char *error, size_t error_size) {
    ERR_clear_error();
    *key_pem = NULL;
    *key_length = 0;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    BIO *bio = key ? BIO_new(BIO_s_secmem()) : NULL;
    const char *step = !key ? "generating a P-256 key" : !bio ? "out of memory" : NULL;
    if (!step && (PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL, NULL) != 1 ||
                  !take(bio, key_pem, key_length))) {
        step = "encoding the key";
    }
    if (step) describe(error, error_size, step);
    BIO_free(bio); /* secure memory: cleansed */
    EVP_PKEY_free(key);
    return step ? -1 : 0;
}

int swt_csr_load_key(const unsigned char *pem, size_t length, unsigned char **key_pem, size_t *key_length, char *error,
                     size_t error_size) {
    ERR_clear_error();
    *key_pem = NULL;
    *key_length = 0;
    EVP_PKEY *key = read_key(pem, length);
    BIO *bio = key ? BIO_new(BIO_s_secmem()) : NULL;
    const char *step = !key ? "no usable private key" : !bio ? "out of memory" : NULL;
    if (!step && (PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL, NULL) != 1 ||
                  !take(bio, key_pem, key_length))) {
        step = "encoding the key";
    }
    if (step) describe(error, error_size, step);
    BIO_free(bio);
    EVP_PKEY_free(key);
    return step ? -1 : 0;
}

/* Go's choice for a name attribute's string: PrintableString when every character allows it. */
static int string_type(const char *value) {
    for (const unsigned char *c = (const unsigned char *)value; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')) continue;
        if (!strchr(" '()+,-./:=?*", *c)) return V_ASN1_UTF8STRING;
    }
    return V_ASN1_PRINTABLESTRING;
}

int swt_csr_create(const unsigned char *key_pem, size_t key_length, const char *common_name,
                   const char *const *organizations, size_t organization_count, unsigned char **csr_pem,
                   size_t *csr_length, unsigned char **public_key_der, size_t *public_key_length, char *error,
                   size_t error_size) {
    ERR_clear_error();
    *csr_pem = NULL;
    *csr_length = 0;
    *public_key_der = NULL;
    *public_key_length = 0;
    EVP_PKEY *key = read_key(key_pem, key_length);
    X509_REQ *request = key ? X509_REQ_new() : NULL;
    BIO *bio = request ? BIO_new(BIO_s_mem()) : NULL;
    unsigned char *der = NULL;
    const char *step = !key ? "no usable private key" : (!request || !bio) ? "out of memory" : NULL;
    if (!step) {
        /* One RDN holding every organization (Go's appendRDNs), then the common name. */
        X509_NAME *subject = X509_REQ_get_subject_name(request);
        int ok = X509_REQ_set_version(request, X509_REQ_VERSION_1) == 1;
        for (size_t i = 0; ok && i < organization_count; i++) {
            ok = organizations[i] &&
                 X509_NAME_add_entry_by_NID(subject, NID_organizationName, string_type(organizations[i]),
                                            (const unsigned char *)organizations[i], -1, -1, i == 0 ? 0 : -1) == 1;
        }
        ok = ok && common_name &&
             X509_NAME_add_entry_by_NID(subject, NID_commonName, string_type(common_name),
                                        (const unsigned char *)common_name, -1, -1, 0) == 1;
        if (!ok) step = "the request's subject";
    }
    if (!step && (X509_REQ_set_pubkey(request, key) != 1 || X509_REQ_sign(request, key, EVP_sha256()) <= 0)) {
        step = "signing the request";
    }
    if (!step && (PEM_write_bio_X509_REQ(bio, request) != 1 || !take(bio, csr_pem, csr_length))) {
        step = "encoding the request";
    }
    int der_length = step ? 0 : i2d_PUBKEY(key, &der);
    if (!step && der_length <= 0) step = "encoding the public key";
    if (!step) {
        *public_key_der = malloc((size_t)der_length);
        if (!*public_key_der) {
            step = "out of memory";
        } else {
            memcpy(*public_key_der, der, (size_t)der_length);
            *public_key_length = (size_t)der_length;
        }
    }
    if (step) {
        describe(error, error_size, step);
        free(*csr_pem);
        *csr_pem = NULL;
        *csr_length = 0;
    }
    OPENSSL_free(der);
    BIO_free(bio);
    X509_REQ_free(request);
    EVP_PKEY_free(key);
    return step ? -1 : 0;
}

int swt_csr_compatible(const unsigned char *existing_pem, size_t existing_length, const unsigned char *ours_pem,
                       size_t ours_length, const unsigned char *key_pem, size_t key_length, char *error,
                       size_t error_size) {
    ERR_clear_error();
    X509_REQ *existing = read_request(existing_pem, existing_length);
    X509_REQ *ours = read_request(ours_pem, ours_length);
    EVP_PKEY *key = read_key(key_pem, key_length);
    int result = -1;
    if (!existing) {
        describe(error, error_size, "the existing request is not a PEM CERTIFICATE REQUEST");
    } else if (!ours || !key) {
        describe(error, error_size, !ours ? "our request does not parse" : "no usable private key");
    } else if (X509_NAME_cmp(X509_REQ_get_subject_name(existing), X509_REQ_get_subject_name(ours)) != 0) {
        snprintf(error, error_size, "the subjects differ");
        result = 0;
    } else if (EVP_PKEY_eq(X509_REQ_get0_pubkey(existing), key) != 1) {
        snprintf(error, error_size, "the existing request is for another key");
        result = 0;
    } else if (X509_REQ_verify(existing, key) != 1) {
        snprintf(error, error_size, "the existing request's signature does not verify with our key");
        result = 0;
    } else {
        result = 1;
    }
    ERR_clear_error();
    EVP_PKEY_free(key);
    X509_REQ_free(ours);
    X509_REQ_free(existing);
    return result;
}

int swt_csr_certificate_matches_key(const unsigned char *cert_pem, size_t cert_length, const unsigned char *key_pem,
                                    size_t key_length, char *error, size_t error_size) {
    ERR_clear_error();
    BIO *bio = read_bio(cert_pem, cert_length);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, no_passphrase, NULL) : NULL;
    BIO_free(bio);
    EVP_PKEY *key = read_key(key_pem, key_length);
    int result = -1;
    if (!cert || !key) {
        describe(error, error_size, !cert ? "no PEM certificate" : "no usable private key");
    } else if (EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
        snprintf(error, error_size, "the certificate is for another key");
        result = 0;
    } else {
        result = 1;
    }
    ERR_clear_error();
    EVP_PKEY_free(key);
    X509_free(cert);
    return result;
}

static int unix_time(const ASN1_TIME *time, long long *out) {
    struct tm parts;
    memset(&parts, 0, sizeof parts);
    if (!time || ASN1_TIME_to_tm(time, &parts) != 1) return 0;
    *out = (long long)timegm(&parts);
    return 1;
}

int swt_csr_certificate_validity(const unsigned char *pem, size_t length, long long *not_before, long long *not_after,
                                 size_t capacity, char *error, size_t error_size) {
    ERR_clear_error();
    BIO *bio = read_bio(pem, length);
    if (!bio) {
        snprintf(error, error_size, "no PEM data");
        return -1;
    }
    int count = 0;
    const char *failed = NULL;
    for (;;) {
        X509 *cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
        if (!cert) {
            unsigned long code = ERR_peek_last_error();
            /* The end of the data: no further CERTIFICATE block. */
            if (ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE) {
                ERR_clear_error();
            } else {
                failed = "a malformed certificate";
            }
            break;
        }
        long long before = 0, after = 0;
        int ok = unix_time(X509_get0_notBefore(cert), &before) && unix_time(X509_get0_notAfter(cert), &after);
        X509_free(cert);
        if (!ok) {
            failed = "a certificate's validity does not parse";
            break;
        }
        if ((size_t)count < capacity) {
            not_before[count] = before;
            not_after[count] = after;
        }
        count++;
    }
    BIO_free(bio);
    if (!failed && count == 0) failed = "no PEM certificate";
    if (failed) {
        describe(error, error_size, failed);
        return -1;
    }
    return count;
}

int swt_csr_sha512_256(const unsigned char *data, size_t length, unsigned char *digest) {
    unsigned int size = 0;
    static const unsigned char empty = 0;
    return EVP_Digest(data ? (const void *)data : (const void *)&empty, length, digest, &size, EVP_sha512_256(), NULL) ==
                   1 &&
                   size == 32
               ? 0
               : -1;
}

#define _GNU_SOURCE
#include "swiftlet_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct swt_ctx {
    SSL_CTX *ssl_ctx;
};

struct swt_conn {
    SSL *ssl;
    char error[256];
};

/* MARK: Errors */

/* "<what>: <OpenSSL's first queued error>" (or errno's text, or "<what>" alone). */
static void describe(char *error, size_t size, const char *what, int saved_errno) {
    if (!error || size == 0) return;
    unsigned long code = ERR_get_error();
    if (code != 0) {
        char text[200];
        ERR_error_string_n(code, text, sizeof text);
        snprintf(error, size, "%s: %s", what, text);
    } else if (saved_errno != 0) {
        snprintf(error, size, "%s: %s", what, strerror(saved_errno));
    } else {
        snprintf(error, size, "%s", what);
    }
    ERR_clear_error();
}

static long elapsed_ms(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* MARK: Context */

/* Verification never fails the handshake: the result is read after it (SSL_get_verify_result). */
static int accept_any_chain(int preverified, X509_STORE_CTX *store) {
    (void)preverified;
    (void)store;
    return 1;
}

swt_ctx *swt_ctx_new(const char *cert_file, const char *key_file, const char *client_ca_file, char *error,
                     size_t error_size) {
    ERR_clear_error();
    SSL_CTX *ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (!ssl_ctx) {
        describe(error, error_size, "SSL_CTX_new", 0);
        return NULL;
    }
    const char *step = NULL;
    if (SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION) != 1) step = "TLS 1.2 minimum";
    else if (SSL_CTX_use_certificate_chain_file(ssl_ctx, cert_file) != 1) step = "certificate file";
    else if (SSL_CTX_use_PrivateKey_file(ssl_ctx, key_file, SSL_FILETYPE_PEM) != 1) step = "private key file";
    else if (SSL_CTX_check_private_key(ssl_ctx) != 1) step = "private key does not match the certificate";
    if (!step && client_ca_file) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca_file);
        if (!names || SSL_CTX_load_verify_locations(ssl_ctx, client_ca_file, NULL) != 1) {
            if (names) sk_X509_NAME_pop_free(names, X509_NAME_free);
            step = "client CA file";
        } else {
            SSL_CTX_set_client_CA_list(ssl_ctx, names); /* takes ownership */
            SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, accept_any_chain);
        }
    }
    if (step) {
        char what[160];
        snprintf(what, sizeof what, "%s", step);
        describe(error, error_size, what, 0);
        SSL_CTX_free(ssl_ctx);
        return NULL;
    }
    SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* A peer that closes without close_notify reads as end of stream, as in Go. */
    SSL_CTX_set_options(ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    swt_ctx *ctx = malloc(sizeof *ctx);
    if (!ctx) {
        snprintf(error, error_size, "out of memory");
        SSL_CTX_free(ssl_ctx);
        return NULL;
    }
    ctx->ssl_ctx = ssl_ctx;
    return ctx;
}

void swt_ctx_free(swt_ctx *ctx) {
    if (!ctx) return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

/* MARK: Sessions */

int swt_accept(swt_ctx *ctx, int fd, int cancel_fd, int timeout_ms, swt_conn **out, char *error, size_t error_size) {
    *out = NULL;
    swt_conn *conn = calloc(1, sizeof *conn);
    if (!conn) {
        snprintf(error, error_size, "out of memory");
        return SWT_FAILED;
    }
    ERR_clear_error();
    conn->ssl = SSL_new(ctx->ssl_ctx);
    if (!conn->ssl || SSL_set_fd(conn->ssl, fd) != 1) {
        describe(error, error_size, "SSL_new", 0);
        swt_conn_free(conn);
        return SWT_FAILED;
    }
    SSL_set_accept_state(conn->ssl);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int rc = SSL_do_handshake(conn->ssl);
        if (rc == 1) {
            *out = conn;
            return SWT_OK;
        }
        int saved = errno;
        short events;
        switch (SSL_get_error(conn->ssl, rc)) {
        case SSL_ERROR_WANT_READ: events = POLLIN; break;
        case SSL_ERROR_WANT_WRITE: events = POLLOUT; break;
        case SSL_ERROR_ZERO_RETURN:
            snprintf(error, error_size, "TLS handshake: the client closed the connection");
            swt_conn_free(conn);
            return SWT_FAILED;
        case SSL_ERROR_SYSCALL:
            describe(error, error_size, saved ? "TLS handshake" : "TLS handshake: the client closed the connection",
                     saved);
            swt_conn_free(conn);
            return SWT_FAILED;
        default:
            describe(error, error_size, "TLS handshake", 0);
            swt_conn_free(conn);
            return SWT_FAILED;
        }
        long remaining = timeout_ms - elapsed_ms(&start);
        if (remaining <= 0) {
            snprintf(error, error_size, "TLS handshake timed out");
            swt_conn_free(conn);
            return SWT_TIMEOUT;
        }
        struct pollfd fds[2] = {{.fd = fd, .events = events}, {.fd = cancel_fd, .events = POLLIN}};
        int ready = poll(fds, cancel_fd >= 0 ? 2 : 1, (int)remaining);
        if (ready < 0 && errno != EINTR) {
            describe(error, error_size, "poll", errno);
            swt_conn_free(conn);
            return SWT_FAILED;
        }
        if (ready > 0 && cancel_fd >= 0 && fds[1].revents) {
            snprintf(error, error_size, "TLS handshake cancelled");
            swt_conn_free(conn);
            return SWT_CANCELLED;
        }
    }
}

static long outcome(swt_conn *conn, int rc, int saved_errno) {
    switch (SSL_get_error(conn->ssl, rc)) {
    case SSL_ERROR_WANT_READ: return SWT_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return SWT_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: return SWT_EOF;
    case SSL_ERROR_SYSCALL:
        if (saved_errno == 0 && ERR_peek_error() == 0) return SWT_EOF;
        describe(conn->error, sizeof conn->error, "TLS", saved_errno);
        return SWT_ERROR;
    default:
        describe(conn->error, sizeof conn->error, "TLS", 0);
        return SWT_ERROR;
    }
}

long swt_read(swt_conn *conn, void *buffer, size_t length) {
    size_t done = 0;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_read_ex(conn->ssl, buffer, length, &done);
    if (rc == 1) return (long)done;
    return outcome(conn, rc, errno);
}

/* OpenSSL writes to the socket with plain write(2): a peer that is gone raises SIGPIPE, which
 * would kill the process on a thread that has not blocked it (any thread may write: a log
 * stream's producer runs on the Swift pool). So each write blocks SIGPIPE for its duration,
 * takes back a SIGPIPE it caused, and restores the thread's mask. */
typedef struct { sigset_t old; int had_pending; } sigpipe_guard;

static void sigpipe_guard_begin(sigpipe_guard *guard) {
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigpending(&pending);
    guard->had_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &guard->old);
}

static void sigpipe_guard_end(sigpipe_guard *guard) {
    if (!guard->had_pending) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) == SIGPIPE) {}
    }
    pthread_sigmask(SIG_SETMASK, &guard->old, NULL);
}

long swt_write(swt_conn *conn, const void *buffer, size_t length) {
    size_t done = 0;
    if (length == 0) return SWT_ERROR;
    ERR_clear_error();
    sigpipe_guard guard;
    sigpipe_guard_begin(&guard);
    errno = 0;
    int rc = SSL_write_ex(conn->ssl, buffer, length, &done);
    int saved = errno;
    sigpipe_guard_end(&guard);
    if (rc == 1) return (long)done;
    return outcome(conn, rc, saved);
}

int swt_pending(swt_conn *conn) { return SSL_pending(conn->ssl); }

void swt_close_notify(swt_conn *conn) {
    ERR_clear_error();
    sigpipe_guard guard;
    sigpipe_guard_begin(&guard);
    (void)SSL_shutdown(conn->ssl);
    sigpipe_guard_end(&guard);
    ERR_clear_error();
}

const char *swt_conn_error(swt_conn *conn) { return conn->error; }

void swt_conn_free(swt_conn *conn) {
    if (!conn) return;
    SSL_free(conn->ssl);
    free(conn);
}

/* MARK: The peer's certificate */

int swt_peer_certificate(swt_conn *conn, int *verified, char *verify_error, size_t verify_error_size) {
    *verified = 0;
    if (verify_error_size > 0) verify_error[0] = 0;
    if (!SSL_get0_peer_certificate(conn->ssl)) return 0;
    long result = SSL_get_verify_result(conn->ssl);
    if (result == X509_V_OK) {
        *verified = 1;
    } else if (verify_error_size > 0) {
        snprintf(verify_error, verify_error_size, "%s", X509_verify_cert_error_string(result));
    }
    return 1;
}

static X509_NAME *peer_subject(swt_conn *conn) {
    X509 *cert = SSL_get0_peer_certificate(conn->ssl);
    return cert ? X509_get_subject_name(cert) : NULL;
}

static int nid_of(int kind) { return kind == SWT_NAME_CN ? NID_commonName : NID_organizationName; }

int swt_peer_name_count(swt_conn *conn, int kind) {
    X509_NAME *name = peer_subject(conn);
    int count = 0;
    for (int at = -1; name && (at = X509_NAME_get_index_by_NID(name, nid_of(kind), at)) >= 0;) count++;
    return count;
}

int swt_peer_name(swt_conn *conn, int kind, int index, char *buffer, size_t size) {
    X509_NAME *name = peer_subject(conn);
    int at = -1;
    for (int seen = 0; name && (at = X509_NAME_get_index_by_NID(name, nid_of(kind), at)) >= 0; seen++) {
        if (seen < index) continue;
        unsigned char *utf8 = NULL;
        int length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at)));
        if (length < 0) return -1;
        if (size > 0) {
            size_t copied = (size_t)length < size - 1 ? (size_t)length : size - 1;
            memcpy(buffer, utf8, copied);
            buffer[copied] = 0;
        }
        OPENSSL_free(utf8);
        return length;
    }
    return -1;
}

/* MARK: Self-signed serving certificate */

enum { SELF_SIGNED_RSA_BITS = 2048 };
/* client-go: valid an hour early (clock skew), for 365 days from then. */
static const long long SELF_SIGNED_BACKDATE = 3600;
static const long long SELF_SIGNED_LIFETIME = 365LL * 24 * 3600;

/* An IPv4 or IPv6 literal into out: 4 or 16 bytes (IPv4-mapped IPv6 as 4, as Go encodes it),
   0 when text is not one. */
static int parse_ip(const char *text, unsigned char out[16]) {
    if (inet_pton(AF_INET, text, out) == 1) return 4;
    struct in6_addr v6;
    if (inet_pton(AF_INET6, text, &v6) != 1) return 0;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
        memcpy(out, &v6.s6_addr[12], 4);
        return 4;
    }
    memcpy(out, v6.s6_addr, 16);
    return 16;
}

/* A v3 certificate with a random positive serial, subject CN common_name (UTF8String, as Go
   encodes a name with '@'), the validity and the public key; NULL on failure. */
static X509 *new_certificate(const char *common_name, EVP_PKEY *key, long long not_before) {
    X509 *cert = X509_new();
    BIGNUM *serial = BN_new();
    int ok = cert && serial && X509_set_version(cert, X509_VERSION_3) == 1 &&
             BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ODD) == 1 &&
             BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) != NULL &&
             X509_NAME_add_entry_by_NID(X509_get_subject_name(cert), NID_commonName, V_ASN1_UTF8STRING,
                                        (const unsigned char *)common_name, -1, -1, 0) == 1 &&
             ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)not_before) != NULL &&
             ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)(not_before + SELF_SIGNED_LIFETIME)) != NULL &&
             X509_set_pubkey(cert, key) == 1;
    BN_free(serial);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/* One extension in OpenSSL's configuration syntax, issuer's key identifier at hand. */
static int add_extension(X509 *cert, X509 *issuer, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *extension = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    int ok = extension && X509_add_ext(cert, extension, -1) == 1;
    X509_EXTENSION_free(extension);
    return ok;
}

static int push_name(GENERAL_NAMES *sans, int type, const unsigned char *data, int length) {
    GENERAL_NAME *name = GENERAL_NAME_new();
    ASN1_STRING *value = type == GEN_DNS ? ASN1_IA5STRING_new() : ASN1_OCTET_STRING_new();
    if (!name || !value || ASN1_STRING_set(value, data, length) != 1) {
        GENERAL_NAME_free(name);
        ASN1_STRING_free(value);
        return 0;
    }
    GENERAL_NAME_set0_value(name, type, value); /* name owns value */
    if (sk_GENERAL_NAME_push(sans, name) <= 0) {
        GENERAL_NAME_free(name);
        return 0;
    }
    return 1;
}

/* subjectAltName's names: DNS names, then IP addresses (Go's order). NULL with error set when
   a name cannot be certified. */
static GENERAL_NAMES *subject_alt_names(const char *const *names, size_t name_count, const char *const *ips,
                                        size_t ip_count, char *error, size_t error_size) {
    GENERAL_NAMES *sans = GENERAL_NAMES_new();
    const char *failed = sans ? NULL : "subject alternative names";
    unsigned char address[16];
    for (size_t i = 0; !failed && i < name_count; i++) {
        if (parse_ip(names[i], address) > 0) continue;
        for (const char *c = names[i]; *c; c++) {
            if ((unsigned char)*c > 0x7e || (unsigned char)*c < 0x21) {
                snprintf(error, error_size, "not an ASCII DNS name: %s", names[i]);
                GENERAL_NAMES_free(sans);
                return NULL;
            }
        }
        if (!push_name(sans, GEN_DNS, (const unsigned char *)names[i], (int)strlen(names[i]))) failed = "DNS name";
    }
    for (size_t pass = 0; !failed && pass < 2; pass++) {
        const char *const *list = pass == 0 ? names : ips;
        size_t count = pass == 0 ? name_count : ip_count;
        for (size_t i = 0; !failed && i < count; i++) {
            int length = parse_ip(list[i], address);
            if (length == 0 && pass == 0) continue;
            if (length == 0) {
                snprintf(error, error_size, "not an IP address: %s", list[i]);
                GENERAL_NAMES_free(sans);
                return NULL;
            }
            if (!push_name(sans, GEN_IPADD, address, length)) failed = "IP address";
        }
    }
    if (failed) {
        describe(error, error_size, failed, 0);
        GENERAL_NAMES_free(sans);
        return NULL;
    }
    return sans;
}

/* A memory BIO's contents to fd, all of it. */
static int write_all(int fd, BIO *bio) {
    char *data = NULL;
    long length = BIO_get_mem_data(bio, &data);
    while (length > 0) {
        ssize_t written = write(fd, data, (size_t)length);
        if (written < 0) {
            if (errno == EINTR) continue;
            return 0;
        }
        data += written;
        length -= written;
    }
    return 1;
}

int swt_selfsigned_write(const char *host, const char *const *names, size_t name_count, const char *const *ips,
                         size_t ip_count, long long now, int cert_fd, int key_fd, char *error, size_t error_size) {
    ERR_clear_error();
    for (size_t i = 0; i < name_count + ip_count; i++) {
        if (!(i < name_count ? names[i] : ips[i - name_count])) {
            snprintf(error, error_size, "out of memory");
            return -1;
        }
    }
    char ca_name[512], name[512];
    if (snprintf(ca_name, sizeof ca_name, "%s-ca@%lld", host, now) >= (int)sizeof ca_name ||
        snprintf(name, sizeof name, "%s@%lld", host, now) >= (int)sizeof name) {
        snprintf(error, error_size, "host name too long");
        return -1;
    }
    long long not_before = now - SELF_SIGNED_BACKDATE;
    GENERAL_NAMES *sans = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    X509 *ca = NULL, *cert = NULL;
    BIO *cert_pem = NULL, *key_pem = NULL;
    const char *step = NULL;
    int saved_errno = 0, reported = 0;

    /* The names first: a bad one fails before two RSA keys are made. */
    if (!(sans = subject_alt_names(names, name_count, ips, ip_count, error, error_size))) {
        reported = 1;
    } else if (!(ca_key = EVP_RSA_gen(SELF_SIGNED_RSA_BITS)) || !(key = EVP_RSA_gen(SELF_SIGNED_RSA_BITS))) {
        step = "RSA key";
    } else if (!(ca = new_certificate(ca_name, ca_key, not_before)) ||
               X509_set_issuer_name(ca, X509_get_subject_name(ca)) != 1 ||
               !add_extension(ca, ca, NID_basic_constraints, "critical,CA:TRUE") ||
               !add_extension(ca, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment,keyCertSign") ||
               !add_extension(ca, ca, NID_subject_key_identifier, "hash") || X509_sign(ca, ca_key, EVP_sha256()) <= 0) {
        step = "CA certificate";
    } else if (!(cert = new_certificate(name, key, not_before)) ||
               X509_set_issuer_name(cert, X509_get_subject_name(ca)) != 1 ||
               !add_extension(cert, ca, NID_basic_constraints, "critical,CA:FALSE") ||
               !add_extension(cert, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
               !add_extension(cert, ca, NID_ext_key_usage, "serverAuth") ||
               !add_extension(cert, ca, NID_authority_key_identifier, "keyid:always") ||
               X509_add1_ext_i2d(cert, NID_subject_alt_name, sans, 0, X509V3_ADD_DEFAULT) != 1) {
        step = "certificate";
    } else if (X509_sign(cert, ca_key, EVP_sha256()) <= 0) {
        step = "signing the certificate";
    } else if (!(cert_pem = BIO_new(BIO_s_mem())) || !(key_pem = BIO_new(BIO_s_secmem())) ||
               PEM_write_bio_X509(cert_pem, cert) != 1 || PEM_write_bio_X509(cert_pem, ca) != 1 ||
               PEM_write_bio_PrivateKey_traditional(key_pem, key, NULL, NULL, 0, NULL, NULL) != 1) {
        step = "PEM encoding";
    } else if (!write_all(cert_fd, cert_pem)) {
        step = "writing the certificate";
        saved_errno = errno;
    } else if (!write_all(key_fd, key_pem)) {
        step = "writing the key";
        saved_errno = errno;
    }
    if (step && !reported) describe(error, error_size, step, saved_errno);
    BIO_free(key_pem); /* secure memory: cleansed */
    BIO_free(cert_pem);
    X509_free(cert);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    GENERAL_NAMES_free(sans);
    return step || reported ? -1 : 0;
}

/* MARK: Sockets */

int swt_listen_tcp(const char *host, int port, int backlog, int *bound_port) {
    struct sockaddr_storage storage;
    memset(&storage, 0, sizeof storage);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&storage;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&storage;
    socklen_t length;
    if (port < 0 || port > 65535) return -EINVAL;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        length = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        length = sizeof *v6;
    } else {
        return -EINVAL;
    }
    int fd = socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&storage, length) != 0 || listen(fd, backlog) != 0 ||
        getsockname(fd, (struct sockaddr *)&storage, &length) != 0) {
        int saved = errno;
        close(fd);
        return -saved;
    }
    *bound_port = storage.ss_family == AF_INET ? ntohs(v4->sin_port) : ntohs(v6->sin6_port);
    return fd;
}

int swt_accept_fd(int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return fd;
        }
        if (errno != EINTR) return -errno;
    }
}

int swt_connect_tcp(const char *host, int port, int cancel_fd, int timeout_ms) {
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *addresses = NULL;
    if (getaddrinfo(host, service, &hints, &addresses) != 0 || !addresses) return -EHOSTUNREACH;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int result = -ECONNREFUSED;
    for (struct addrinfo *a = addresses; a; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            result = -errno;
            continue;
        }
        int rc = connect(fd, a->ai_addr, a->ai_addrlen);
        while (rc != 0 && (errno == EINPROGRESS || errno == EINTR)) {
            long remaining = timeout_ms - elapsed_ms(&start);
            if (remaining <= 0) {
                errno = ETIMEDOUT;
                break;
            }
            struct pollfd fds[2] = {{.fd = fd, .events = POLLOUT}, {.fd = cancel_fd, .events = POLLIN}};
            int ready = poll(fds, cancel_fd >= 0 ? 2 : 1, (int)remaining);
            if (ready < 0 && errno != EINTR) break;
            if (ready > 0 && cancel_fd >= 0 && fds[1].revents) {
                errno = ECANCELED;
                break;
            }
            if (ready > 0 && fds[0].revents) {
                int soerror = 0;
                socklen_t size = sizeof soerror;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerror, &size);
                if (soerror == 0) rc = 0;
                else errno = soerror;
                break;
            }
            errno = EINPROGRESS;
        }
        if (rc == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            freeaddrinfo(addresses);
            return fd;
        }
        result = -errno;
        close(fd);
        if (result == -ETIMEDOUT || result == -ECANCELED) break;
    }
    freeaddrinfo(addresses);
    return result;
}

int swt_eventfd(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

void swt_eventfd_signal(int fd) {
    uint64_t one = 1;
    while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {}
}

void swt_eventfd_drain(int fd) {
    uint64_t value;
    while (read(fd, &value, sizeof value) < 0 && errno == EINTR) {}
}

void swt_block_sigpipe(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

void swt_clear_sigpipe(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&set, NULL, &zero) == SIGPIPE) {}
}

void swt_name_thread(const char *name) {
    char truncated[16];
    snprintf(truncated, sizeof truncated, "%s", name);
    pthread_setname_np(pthread_self(), truncated);
}

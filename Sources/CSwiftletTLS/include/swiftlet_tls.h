/*
 * swiftlet_tls.h — server-side TLS for the kubelet API (OpenSSL 3, Debian libssl-dev), and
 * the few socket calls its server needs. Opaque handles; every pointer a function returns is
 * owned by the handle it came from (or freed with the matching _free). No C type reaches a
 * public Swift signature.
 *
 * Errors: functions taking (char *error, size_t error_size) write a NUL-terminated message
 * there (OpenSSL's queue through ERR_error_string_n, or strerror) when they fail.
 */
#ifndef SWIFTLET_TLS_H
#define SWIFTLET_TLS_H

#include <stddef.h>

/* MARK: TLS */

typedef struct swt_ctx swt_ctx;
typedef struct swt_conn swt_conn;

/* A server context: TLS 1.2 and later, the PEM certificate chain and key from files. With
   client_ca_file (NULL for none) a client certificate is requested, not required, and
   verified against those CAs after the handshake (never failing it: the caller decides, as
   Go's tls.RequestClientCert with x509 authentication does). NULL on failure. */
swt_ctx *swt_ctx_new(const char *cert_file, const char *key_file, const char *client_ca_file, char *error,
                     size_t error_size);
void swt_ctx_free(swt_ctx *ctx);

/* Results of swt_accept. */
enum {
    SWT_OK = 0,
    SWT_TIMEOUT = -1,   /* no handshake within timeout_ms */
    SWT_CANCELLED = -2, /* cancel_fd became readable */
    SWT_FAILED = -3,    /* TLS or socket error (message in error) */
};

/* Runs the server handshake on the connected, non-blocking socket fd (borrowed: closed by
   the caller after swt_conn_free), polling fd and cancel_fd (-1 for none) for at most
   timeout_ms. On SWT_OK *out is the session. */
int swt_accept(swt_ctx *ctx, int fd, int cancel_fd, int timeout_ms, swt_conn **out, char *error, size_t error_size);

/* Results of swt_read and swt_write besides a positive byte count. */
enum {
    SWT_EOF = 0,         /* close_notify, or the peer's end of stream */
    SWT_WANT_READ = -1,  /* poll for POLLIN, then retry */
    SWT_WANT_WRITE = -2, /* poll for POLLOUT, then retry */
    SWT_ERROR = -3,      /* swt_conn_error tells */
};

long swt_read(swt_conn *conn, void *buffer, size_t length);
long swt_write(swt_conn *conn, const void *buffer, size_t length);
/* Decrypted bytes already buffered (readable without polling). */
int swt_pending(swt_conn *conn);
/* Sends close_notify (one non-blocking attempt). */
void swt_close_notify(swt_conn *conn);
/* The last SWT_ERROR's message (owned by conn). */
const char *swt_conn_error(swt_conn *conn);
void swt_conn_free(swt_conn *conn);

/* The peer certificate: 0 when none was presented, 1 when one was. *verified is 1 when it
   chains to the client CAs (and may authenticate clients); otherwise verify_error holds
   OpenSSL's reason. */
int swt_peer_certificate(swt_conn *conn, int *verified, char *verify_error, size_t verify_error_size);

/* Subject attributes of the peer certificate: kind SWT_NAME_CN or SWT_NAME_O. Count, then
   each value as UTF-8 into buffer; swt_peer_name returns the value's length (copied up to
   size - 1 bytes), -1 when there is no such entry. */
enum { SWT_NAME_CN = 0, SWT_NAME_O = 1 };
int swt_peer_name_count(swt_conn *conn, int kind);
int swt_peer_name(swt_conn *conn, int kind, int index, char *buffer, size_t size);

/* MARK: Self-signed serving certificate */

/* The kubelet's self-signed serving pair, as client-go's certutil.GenerateSelfSignedCertKey
   makes it: a CA (CN "<host>-ca@<now>", CA:TRUE, keyCertSign) signing a server certificate
   (CN "<host>@<now>", CA:FALSE, serverAuth, the subject alternative names), each with its own
   2048-bit RSA key, SHA-256 signatures, valid from now - 1 hour for 365 days; random serials.
   Names that are IPv4/IPv6 literals become IP SANs, the others DNS SANs (ASCII only); every
   entry of ips must be a literal. Writes the server certificate then the CA (PEM) to cert_fd and
   the server's key (PKCS #1 PEM, "RSA PRIVATE KEY") to key_fd (both borrowed: the caller syncs
   and closes them). 0 on success, -1 on failure (message in error). */
int swt_selfsigned_write(const char *host, const char *const *names, size_t name_count, const char *const *ips,
                         size_t ip_count, long long now, int cert_fd, int key_fd, char *error, size_t error_size);

/* MARK: Sockets */

/* A non-blocking, close-on-exec TCP listener on an IPv4 or IPv6 literal (0: any free port),
   the port bound in *bound_port; -errno on failure (-EINVAL: bad address). */
int swt_listen_tcp(const char *host, int port, int backlog, int *bound_port);
/* accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) with TCP_NODELAY; -errno on failure. */
int swt_accept_fd(int listener);
/* A non-blocking TCP connection to host (name or literal) and port, connected within
   timeout_ms unless cancel_fd becomes readable; -errno on failure (-ETIMEDOUT, -ECANCELED,
   -EHOSTUNREACH when the name does not resolve). */
int swt_connect_tcp(const char *host, int port, int cancel_fd, int timeout_ms);

/* An eventfd (non-blocking, close-on-exec); -errno on failure. */
int swt_eventfd(void);
void swt_eventfd_signal(int fd);
void swt_eventfd_drain(int fd);

/* SIGPIPE blocked in the calling thread (writes to a closed peer fail with EPIPE), and a
   pending one consumed. */
void swt_block_sigpipe(void);
void swt_clear_sigpipe(void);
/* Names the calling thread (15 bytes kept). */
void swt_name_thread(const char *name);

#endif

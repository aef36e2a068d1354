/* OpenSSL server-side TLS for the kubelet API (being written). */
#ifndef SWIFTLET_TLS_H
#define SWIFTLET_TLS_H
int swt_placeholder(void);
#endif

/* Placeholder: the streaming server's C bridge (zlib streams, sockets). */
#ifndef CSWIFTLET_STREAMING_H
#define CSWIFTLET_STREAMING_H
int sws_placeholder(void);
#endif

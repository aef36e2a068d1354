#ifndef SWIFTLET_MONITOR_CONTAINER_H
#define SWIFTLET_MONITOR_CONTAINER_H

#include "spec.h"

/* The cloned child: waits for the monitor's go on sync_fd, sets up isolation and execs.
   Failures go to err_fd as "<stage>\t<errno>\t<detail>". With a tty, the pty is opened in
   the container's devpts and its master sent back on console_socket. Never returns. */
void container_main(const struct spec *spec, int sync_fd, int err_fd, int stdio[3], int console_socket)
    __attribute__((noreturn));

/* Makes every permitted capability effective again (an euid or fsuid change away from 0
   cleared some); 0, or -1 with errno. */
int raise_effective_capabilities(void);

#endif

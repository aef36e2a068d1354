/* System calls Swift cannot call directly (variadic syscall(2), _GNU_SOURCE-only
   declarations), for the Containerizer target. */
#ifndef SWIFTLET_SYSCALLS_H
#define SWIFTLET_SYSCALLS_H

#include <sys/types.h>

/* pidfd_open(2): a file descriptor that becomes readable when pid exits; -1 and errno. */
int swl_pidfd_open(pid_t pid);

/* Reaps the exited child behind a pidfd (waitid P_PIDFD, WNOHANG); 0 if reaped or not a
   child of this process. */
int swl_reap_pidfd(int pidfd);

/* pipe2(2) with O_CLOEXEC; -1 and errno. */
int swl_pipe_cloexec(int fds[2]);

/* A socket(domain, type | SOCK_CLOEXEC) made in the network namespace at netns_path (a pod's
   pinned namespace file). A short-lived thread of its own enters the namespace, so no thread
   of the caller ever changes namespace. Returns the descriptor, or -1 with errno. */
int swl_socket_in_netns(const char *netns_path, int domain, int type);

#endif

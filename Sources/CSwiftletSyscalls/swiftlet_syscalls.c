#define _GNU_SOURCE 1
#include "swiftlet_syscalls.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int swl_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int swl_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int swl_reap_pidfd(int pidfd) {
  siginfo_t info;
  return waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG);
}

#define _GNU_SOURCE 1
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <fcntl.h>
#include "swiftlet_syscalls.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

int swl_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int swl_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int swl_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int swl_reap_pidfd(int pidfd) {
  siginfo_t info;
  return waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG);
}

struct netns_socket_request {
  const char *path;
  int domain, type;
  int result, error;
};

static void *make_socket_in_netns(void *argument) {
  struct netns_socket_request *request = argument;
  int ns = open(request->path, O_RDONLY | O_CLOEXEC);
  if (ns < 0) {
    request->error = errno;
    return NULL;
  }
  /* This thread only: it ends right after, its namespace with it. */
  if (setns(ns, CLONE_NEWNET) != 0) {
    request->error = errno;
    close(ns);
    return NULL;
  }
  close(ns);
  request->result = socket(request->domain, request->type | SOCK_CLOEXEC, 0);
  if (request->result < 0) request->error = errno;
  return NULL;
}

int swl_socket_in_netns(const char *netns_path, int domain, int type) {
  struct netns_socket_request request = {netns_path, domain, type, -1, 0};
  pthread_t thread;
  int created = pthread_create(&thread, NULL, make_socket_in_netns, &request);
  if (created != 0) {
    errno = created;
    return -1;
  }
  pthread_join(thread, NULL);
  if (request.result < 0) errno = request.error;
  return request.result;
}

/* System calls Swift cannot call directly (variadic syscall(2), _GNU_SOURCE-only
   declarations), for the Containerizer and ImageStore targets. */
#ifndef SWIFTLET_SYSCALLS_H
#define SWIFTLET_SYSCALLS_H

#include <stddef.h>
#include <sys/types.h>

/* pidfd_open(2): a file descriptor that becomes readable when pid exits; -1 and errno. */
int swl_pidfd_open(pid_t pid);

/* Reaps the exited child behind a pidfd (waitid P_PIDFD, WNOHANG); 0 if reaped or not a
   child of this process. */
int swl_reap_pidfd(int pidfd);

/* An eventfd (close-on-exec, non-blocking) starting at 0; -1 and errno. */
int swl_eventfd(void);

/* pipe2(2) with O_CLOEXEC; -1 and errno. */
int swl_pipe_cloexec(int fds[2]);

/* A socket(domain, type | SOCK_CLOEXEC) made in the network namespace at netns_path (a pod's
   pinned namespace file). A short-lived thread of its own enters the namespace, so no thread
   of the caller ever changes namespace. Returns the descriptor, or -1 with errno. */
int swl_socket_in_netns(const char *netns_path, int domain, int type);

/* Mounts an overlay on target whose layers are idmapped through the user namespace at
   userns_path (a pod's pinned namespace file): lowers (top first), and upper and work under
   directory. Files the container's root (uid:gid on the host) makes are stored as owned by 0,
   and the layers' 0 is that root inside. Linux 6.8 or later. Runs on a thread of its own.
   Returns 0, or -1 with errno and a message. */
int swl_mount_idmapped_overlay(const char *const *lowers, size_t nlowers, const char *directory, const char *target,
                               const char *userns_path, unsigned int uid, unsigned int gid,
                               char *message, size_t message_length);

/* One device rule of a cgroup v2 device filter: type 'a' (any), 'b' or 'c'; major and minor,
   -1 for any; access bits 1 mknod, 2 read, 4 write (BPF_DEVCG_ACC_*). */
struct swl_device_rule {
  char type;
  long long major, minor;
  unsigned int access;
};

/* Attaches to the cgroup v2 directory cgroup_fd a BPF device program allowing exactly
   rules (anything else is refused with EPERM). The program lives as long as the cgroup.
   Returns 0, or -1 with errno and a message (the verifier's log when it refused). */
int swl_attach_device_filter(int cgroup_fd, const struct swl_device_rule *rules, size_t count, char *message, size_t message_length);

#endif

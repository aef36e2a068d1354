/*
 * swiftlet-monitor: the per-container supervisor, a small single-threaded C process.
 *
 *   swiftlet-monitor SPEC REPORT_FD
 *
 * It starts its own session, so containers outlive an agent restart; clones
 * the container into its namespaces; places it in its cgroups before it runs a single
 * instruction of its own; reports "ok\t<pid>\t<monitor pid>" or "error\t<stage>\t<errno>\t<detail>" on
 * REPORT_FD; then copies the container's output into the CRI log file
 * ("<RFC3339Nano> stdout|stderr P|F <text>", lines split at 16 KiB with P) and, when the
 * container exits, writes its exit status atomically and exits. SIGUSR1 reopens the log
 * (ReopenContainerLog). It is a child subreaper, so it reaps everything the container leaves.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "container.h"
#include "spec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <net/if.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE 16384

static int report_fd = -1;

static void report(const char *text) {
  if (report_fd < 0) return;
  size_t length = strlen(text);
  while (length > 0) {
    ssize_t written = write(report_fd, text, length);
    if (written < 0) {
      if (errno == EINTR) continue;
      break;
    }
    text += written;
    length -= (size_t)written;
  }
}

static void report_error(const char *stage, int code, const char *detail) {
  char message[1400];
  snprintf(message, sizeof(message), "error\t%s\t%d\t%s\n", stage, code, detail);
  report(message);
}

/* Writes text to path atomically (temp file, fsync, rename). */
static int write_atomically(const char *path, const char *text) {
  char temporary[4200];
  snprintf(temporary, sizeof(temporary), "%s.tmp", path);
  int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  size_t length = strlen(text);
  if (write(fd, text, length) != (ssize_t)length || fsync(fd) != 0) {
    close(fd);
    unlink(temporary);
    return -1;
  }
  close(fd);
  return rename(temporary, path);
}

static int write_all_fd(int fd, const char *data, size_t length) {
  while (length > 0) {
    ssize_t written = write(fd, data, length);
    if (written < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    data += written;
    length -= (size_t)written;
  }
  return 0;
}

/* ---- CRI log writing ------------------------------------------------------------------ */

struct stream {
  int fd;
  int tty; /* a pty: lines end "\r\n" (ONLCR), the \r is not content */
  const char *name;
  char buffer[MAX_LINE];
  size_t used;
};

static int log_fd = -1;
static const char *log_path;

static void open_log(void) {
  if (log_path == NULL) return;
  int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return; /* keep the old one, if any */
  if (log_fd >= 0) close(log_fd);
  log_fd = fd;
}

/* RFC 3339 with nanoseconds, trailing zeros trimmed, as Go's time.RFC3339Nano. */
static size_t timestamp(char *out, size_t size) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct tm parts;
  gmtime_r(&now.tv_sec, &parts);
  size_t length = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &parts);
  if (now.tv_nsec != 0) {
    char fraction[16];
    snprintf(fraction, sizeof(fraction), ".%09ld", now.tv_nsec);
    size_t digits = strlen(fraction);
    while (digits > 1 && fraction[digits - 1] == '0') fraction[--digits] = '\0';
    length += (size_t)snprintf(out + length, size - length, "%s", fraction);
  }
  length += (size_t)snprintf(out + length, size - length, "Z");
  return length;
}

static void emit(const struct stream *stream, const char *text, size_t length, char tag) {
  if (log_fd < 0) return;
  char header[96];
  size_t header_length = timestamp(header, sizeof(header));
  header_length += (size_t)snprintf(header + header_length, sizeof(header) - header_length, " %s %c ", stream->name, tag);
  struct iovec parts[3] = {{header, header_length}, {(void *)text, length}, {"\n", 1}};
  ssize_t ignored = writev(log_fd, parts, 3);
  (void)ignored;
}

/* Appends fresh output to the stream's partial line; emits every complete line. */
static void consume(struct stream *stream, const char *data, size_t length) {
  while (length > 0) {
    const char *newline = memchr(data, '\n', length);
    size_t take = newline ? (size_t)(newline - data) : length;
    size_t room = MAX_LINE - stream->used;
    /* A full buffer is emitted as P only once more line follows: a line of exactly MAX_LINE
       bytes then its newline (maybe in the next read) is one F record, not P + an empty F. */
    if (take > room) {
      memcpy(stream->buffer + stream->used, data, room);
      emit(stream, stream->buffer, MAX_LINE, 'P');
      stream->used = 0;
      data += room;
      length -= room;
      continue;
    }
    memcpy(stream->buffer + stream->used, data, take);
    stream->used += take;
    data += take;
    length -= take;
    if (newline) {
      size_t line = stream->used;
      if (stream->tty) {
        while (line > 0 && stream->buffer[line - 1] == '\r') line--;
      }
      emit(stream, stream->buffer, line, 'F');
      stream->used = 0;
      data++;
      length--;
    }
  }
}

static void flush_partial(struct stream *stream) {
  if (stream->used > 0) emit(stream, stream->buffer, stream->used, 'F');
  stream->used = 0;
}

/* ---- attach ----------------------------------------------------------------------------- */

/*
 * Attach clients connect to an abstract unix socket (root only, checked with SO_PEERCRED).
 * Frames both ways: one type byte, a 4-byte big-endian length, the data.
 *   monitor -> client: 1 stdout, 2 stderr (the container's output as it is produced)
 *   client -> monitor: 0 stdin data (length 0: the client's stdin ended), 4 resize "<w> <h>"
 * The monitor closes every client when the container has exited and its output is drained.
 */
#define MAX_CLIENTS 8
#define FRAME_MAX 65536

struct client {
  int fd;
  unsigned char buffer[5 + FRAME_MAX];
  size_t used;
  int sent_stdin;
};

static struct client clients[MAX_CLIENTS];
static int stdin_fd = -1;        /* the container's stdin (pipe write end or terminal), non-blocking */
/* Input the container has not read yet: while any is pending no more is taken from clients
   (their frames wait in their buffers), so a container that does not read its stdin holds
   back its clients, never the monitor. */
static char input_pending[65536];
static size_t input_used = 0, input_offset = 0;
static int stdin_is_tty = 0;
static int stdin_once = 0;

static void close_stdin(void);

static void drop_client(struct client *client) {
  if (client->fd < 0) return;
  close(client->fd);
  client->fd = -1;
  client->used = 0;
  if (client->sent_stdin && stdin_once && stdin_fd >= 0) {
    if (stdin_is_tty) {
      char eot = 4;
      ssize_t ignored = write(stdin_fd, &eot, 1);
      (void)ignored;
    } else {
      close_stdin();
    }
  }
}

static void close_stdin(void) {
  if (stdin_fd >= 0 && !stdin_is_tty) close(stdin_fd);
  if (!stdin_is_tty) stdin_fd = -1;
  input_used = input_offset = 0;
}

/* Writes pending input as far as the container takes it. */
static void flush_input(void) {
  while (input_offset < input_used && stdin_fd >= 0) {
    ssize_t written = write(stdin_fd, input_pending + input_offset, input_used - input_offset);
    if (written < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      close_stdin(); /* the reader is gone */
      return;
    }
    input_offset += (size_t)written;
  }
  input_used = input_offset = 0;
}

/* Queues input (at most one frame, and only when nothing is pending) and writes what it can. */
static void send_input(const char *data, size_t length) {
  if (stdin_fd < 0) return;
  memcpy(input_pending, data, length);
  input_used = length;
  input_offset = 0;
  flush_input();
}

/* Binds the attach socket at path (in a 0700 directory of the agent's state; a stale one is
   replaced) readable by root only. A filesystem socket, not an abstract one: abstract sockets
   are open to every process in the network namespace, host-network pods included. */
static int open_attach_socket(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  struct sockaddr_un address;
  memset(&address, 0, sizeof(address));
  address.sun_family = AF_UNIX;
  size_t length = strlen(path);
  if (length >= sizeof(address.sun_path)) {
    close(fd);
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(address.sun_path, path, length);
  unlink(path);
  mode_t old_mask = umask(0177);
  int bound = bind(fd, (struct sockaddr *)&address, sizeof(address));
  umask(old_mask);
  if (bound != 0 || listen(fd, MAX_CLIENTS) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  /* Output bursts queue here rather than drop a client that reads a moment late. */
  int buffer = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof(buffer));
  return fd;
}

static void accept_client(int listener) {
  int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) return;
  int buffer = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof(buffer));
  struct ucred credentials;
  socklen_t size = sizeof(credentials);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0 || credentials.uid != 0) {
    close(fd);
    return;
  }
  for (int i = 0; i < MAX_CLIENTS; i++) {
    if (clients[i].fd < 0) {
      clients[i].fd = fd;
      clients[i].used = 0;
      clients[i].sent_stdin = 0;
      return;
    }
  }
  close(fd); /* too many */
}

/* Sends output to every client; a client that cannot take it at once is dropped, so a slow
   reader never holds the container. */
static void broadcast(unsigned char type, const char *data, size_t length) {
  unsigned char header[5] = {type, (unsigned char)(length >> 24), (unsigned char)(length >> 16),
                             (unsigned char)(length >> 8), (unsigned char)length};
  for (int i = 0; i < MAX_CLIENTS; i++) {
    if (clients[i].fd < 0) continue;
    struct iovec parts[2] = {{header, 5}, {(void *)data, length}};
    struct msghdr message = {0};
    message.msg_iov = parts;
    message.msg_iovlen = 2;
    ssize_t sent = sendmsg(clients[i].fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent != (ssize_t)(length + 5)) drop_client(&clients[i]);
  }
}

/* Handles the complete frames a client sent, until input is pending. */
static void parse_client(struct client *client, int tty_master) {
  while (client->fd >= 0 && client->used >= 5 && input_used == 0) {
    size_t length = ((size_t)client->buffer[1] << 24) | ((size_t)client->buffer[2] << 16) |
                    ((size_t)client->buffer[3] << 8) | client->buffer[4];
    if (length > FRAME_MAX) {
      drop_client(client);
      return;
    }
    if (client->used < 5 + length) break;
    unsigned char type = client->buffer[0];
    const char *data = (const char *)client->buffer + 5;
    if (type == 0) {
      client->sent_stdin = 1;
      if (length == 0) {
        /* This client's stdin ended: with stdin_once the container's ends too. */
        if (stdin_once && stdin_fd >= 0) {
          if (stdin_is_tty) {
            char eot = 4;
            ssize_t ignored = write(stdin_fd, &eot, 1);
            (void)ignored;
          } else {
            close_stdin();
          }
        }
      } else {
        send_input(data, length);
      }
    } else if (type == 4 && tty_master >= 0) {
      char text[32];
      size_t take = length < sizeof(text) - 1 ? length : sizeof(text) - 1;
      memcpy(text, data, take);
      text[take] = '\0';
      unsigned int width = 0, height = 0;
      if (sscanf(text, "%u %u", &width, &height) == 2) {
        struct winsize size = {(unsigned short)height, (unsigned short)width, 0, 0};
        ioctl(tty_master, TIOCSWINSZ, &size);
      }
    }
    memmove(client->buffer, client->buffer + 5 + length, client->used - 5 - length);
    client->used -= 5 + length;
  }
}

static void read_client(struct client *client, int tty_master) {
  if (client->used < sizeof(client->buffer)) {
    ssize_t got = read(client->fd, client->buffer + client->used, sizeof(client->buffer) - client->used);
    if (got <= 0) {
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) return;
      drop_client(client);
      return;
    }
    client->used += (size_t)got;
  }
  parse_client(client, tty_master);
}

/* ---- the monitor ---------------------------------------------------------------------- */

/* Receives the pty master the container sends (SCM_RIGHTS); -1 if it sent none. */
static int receive_console(int console_socket) {
  char byte;
  struct iovec iov = {&byte, 1};
  char control[CMSG_SPACE(sizeof(int))];
  struct msghdr message = {0};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  ssize_t got;
  do {
    got = recvmsg(console_socket, &message, MSG_CMSG_CLOEXEC);
  } while (got < 0 && errno == EINTR);
  if (got != 1) return -1;
  struct cmsghdr *header = CMSG_FIRSTHDR(&message);
  if (header == NULL || header->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(header), sizeof(int));
  return fd;
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t length = (ssize_t)strlen(text);
  int result = write(fd, text, (size_t)length) == length ? 0 : -1;
  int saved = errno;
  close(fd);
  errno = saved;
  return result;
}

/*
 * Joins the pid namespace (if asked), clones the container, places it in its cgroups, lets it
 * run, and waits for its exec (or its failure, which is reported). Returns the pid, or -1
 * after reporting an error.
 */
static pid_t start_container(const struct spec *spec_in, int child_stdio[3], int console[2], int *tty_master) {
  const struct spec *s = spec_in;
  char err[1024];
  for (size_t i = 0; i < s->njoins; i++) {
    if (s->joins[i].nstype != CLONE_NEWPID) continue;
    int fd = open(s->joins[i].path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWPID) != 0) {
      snprintf(err, sizeof(err), "join %s: %s", s->joins[i].path, strerror(errno));
      report_error("namespaces", errno, err);
      return -1;
    }
    close(fd);
  }

  int sync_pipe[2], error_pipe[2];
  if (pipe2(sync_pipe, O_CLOEXEC) != 0 || pipe2(error_pipe, O_CLOEXEC) != 0) {
    report_error("monitor", errno, "pipe");
    return -1;
  }

  pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)s->clone_flags | SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid < 0) {
    int saved = errno;
    snprintf(err, sizeof(err), "clone into new namespaces: %s", strerror(saved));
    report_error("clone", saved, err);
    return -1;
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    close(sync_pipe[1]);
    close(error_pipe[0]);
    if (console[0] >= 0) close(console[0]);
    container_main(s, sync_pipe[0], error_pipe[1], child_stdio, console[1]);
  }
  close(sync_pipe[0]);
  close(error_pipe[1]);
  if (console[1] >= 0) close(console[1]);

  /* Into the cgroups before the container runs anything of its own. */
  char pid_text[32];
  snprintf(pid_text, sizeof(pid_text), "%d", pid);
  for (size_t i = 0; i < s->ncgroups; i++) {
    char procs[4200];
    snprintf(procs, sizeof(procs), "%s/cgroup.procs", s->cgroups[i]);
    if (write_file(procs, pid_text) != 0) {
      int saved = errno;
      snprintf(err, sizeof(err), "add pid %d to %s: %s", pid, procs, strerror(saved));
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      report_error("cgroups", saved, err);
      return -1;
    }
  }
  if (write(sync_pipe[1], "g", 1) != 1) {
    kill(pid, SIGKILL);
  }
  close(sync_pipe[1]);
  if (s->tty) {
    *tty_master = receive_console(console[0]); /* -1 if the container failed before it */
    close(console[0]);
  }

  char failure[1400];
  ssize_t failure_length = 0, got;
  while ((got = read(error_pipe[0], failure + failure_length, sizeof(failure) - 1 - (size_t)failure_length)) != 0) {
    if (got < 0) {
      if (errno == EINTR) continue;
      break;
    }
    failure_length += got;
    if ((size_t)failure_length >= sizeof(failure) - 1) break;
  }
  close(error_pipe[0]);
  if (failure_length > 0) {
    failure[failure_length] = '\0';
    waitpid(pid, NULL, 0);
    char message[1500];
    snprintf(message, sizeof(message), "error\t%s\n", failure);
    report(message);
    return -1;
  }

  return pid;
}

/* ---- pinned namespaces (pod sandboxes) -------------------------------------------------- */

/* Brings the loopback interface of the current network namespace up. */
static int loopback_up(void) {
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return -1;
  struct ifreq request;
  memset(&request, 0, sizeof(request));
  snprintf(request.ifr_name, sizeof(request.ifr_name), "lo");
  int result = ioctl(sock, SIOCGIFFLAGS, &request);
  if (result == 0) {
    request.ifr_flags |= IFF_UP;
    result = ioctl(sock, SIOCSIFFLAGS, &request);
  }
  int saved = errno;
  close(sock);
  errno = saved;
  return result;
}

/* Writes the maps of the user namespace of pid ("uid_map" or "gid_map"), in one write. */
static int write_idmap(pid_t pid, const char *file, const struct spec_idmap *maps, size_t count) {
  char path[64], text[1024];
  size_t used = 0;
  for (size_t i = 0; i < count && used < sizeof(text); i++) {
    used += (size_t)snprintf(text + used, sizeof(text) - used, "%u %u %u\n", maps[i].container_id, maps[i].host_id, maps[i].length);
  }
  if (used >= sizeof(text)) {
    errno = E2BIG;
    return -1;
  }
  snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
  return write_file(path, text);
}

/*
 * A pod's user namespace: a child unshares it together with the pod's other namespaces (which
 * it then owns) and waits; this process writes the maps and joins the other namespaces to set
 * them up as it would its own. Returns the child's pid (it exits when *release is closed), or
 * -1 after reporting an error.
 */
static pid_t unshare_user_namespace(const struct spec *spec, int flags, int *release) {
  char err[1024];
  int ready[2], hold[2];
  if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(hold, O_CLOEXEC) != 0) {
    report_error("monitor", errno, "pipe");
    return -1;
  }
  pid_t child = fork();
  if (child < 0) {
    report_error("namespaces", errno, "fork");
    return -1;
  }
  if (child == 0) {
    close(ready[0]);
    close(hold[1]);
    char code = unshare(CLONE_NEWUSER | flags) == 0 ? 0 : (char)errno;
    ssize_t ignored = write(ready[1], &code, 1);
    (void)ignored;
    char byte;
    while (read(hold[0], &byte, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  close(ready[1]);
  close(hold[0]);
  *release = hold[1];
  char code = 0;
  ssize_t got;
  while ((got = read(ready[0], &code, 1)) < 0 && errno == EINTR) {
  }
  close(ready[0]);
  int saved = got == 1 ? code : EIO;
  const char *stage = "namespaces";
  if (got == 1 && code == 0) {
    saved = 0;
    if (write_idmap(child, "uid_map", spec->uid_maps, spec->nuid_maps) != 0 ||
        write_idmap(child, "gid_map", spec->gid_maps, spec->ngid_maps) != 0) {
      saved = errno;
      stage = "idmap";
    }
  }
  static const struct { int flag; const char *name; } kinds[] = {
    {CLONE_NEWNET, "net"}, {CLONE_NEWIPC, "ipc"}, {CLONE_NEWUTS, "uts"},
  };
  for (size_t i = 0; saved == 0 && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
    if (!(flags & kinds[i].flag)) continue;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/%s", child, kinds[i].name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, kinds[i].flag) != 0) saved = errno;
    if (fd >= 0) close(fd);
  }
  if (saved != 0) {
    if (strcmp(stage, "idmap") == 0) {
      snprintf(err, sizeof(err), "write the user namespace's id maps: %s", strerror(saved));
    } else {
      snprintf(err, sizeof(err), "new user namespace: %s", strerror(saved));
    }
    close(hold[1]);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    report_error(stage, saved, err);
    return -1;
  }
  return child;
}

/*
 * MODE_PIN: new net/ipc/uts namespaces for a pod (and a user namespace owning them, when the
 * pod has one), set up (hostname, loopback, namespaced sysctls, which apply to the namespaces
 * of the writing process) and bind-mounted on the spec's files, so they outlive this process:
 * no process is kept per pod. Reports "ok\t0\t<pid>" or an error; the agent unmounts whatever
 * was pinned when it fails.
 */
static int pin_namespaces(const struct spec *spec) {
  char err[1024];
  int flags = spec->clone_flags & (CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS);
  pid_t user_holder = -1;
  int release = -1;
  if (spec->clone_flags & CLONE_NEWUSER) {
    user_holder = unshare_user_namespace(spec, flags, &release);
    if (user_holder < 0) return 1;
  } else if (flags != 0 && unshare(flags) != 0) {
    int saved = errno;
    snprintf(err, sizeof(err), "unshare: %s", strerror(saved));
    report_error("namespaces", saved, err);
    return 1;
  }
  int status = 1;
  if (spec->hostname && (flags & CLONE_NEWUTS) && sethostname(spec->hostname, strlen(spec->hostname)) != 0) {
    int saved = errno;
    snprintf(err, sizeof(err), "sethostname %s: %s", spec->hostname, strerror(saved));
    report_error("hostname", saved, err);
    goto done;
  }
  if ((flags & CLONE_NEWNET) && loopback_up() != 0) {
    int saved = errno;
    snprintf(err, sizeof(err), "bring up lo: %s", strerror(saved));
    report_error("network", saved, err);
    goto done;
  }
  /* In a user namespace's IPC namespace only its root may write the sysctls (the kernel's
     ipc_permissions; CAP_SYS_RESOURCE would do, but hosts may not grant it): write them as it,
     keeping the capabilities (the network sysctls want CAP_NET_ADMIN). */
  unsigned int root_uid = 0, root_gid = 0;
  for (size_t i = 0; user_holder > 0 && i < spec->nuid_maps; i++) {
    if (spec->uid_maps[i].container_id == 0) root_uid = spec->uid_maps[i].host_id;
  }
  for (size_t i = 0; user_holder > 0 && i < spec->ngid_maps; i++) {
    if (spec->gid_maps[i].container_id == 0) root_gid = spec->gid_maps[i].host_id;
  }
  if (spec->nsysctls > 0 && (root_uid != 0 || root_gid != 0) &&
      (setegid(root_gid) != 0 || seteuid(root_uid) != 0 || raise_effective_capabilities() != 0)) {
    int saved = errno;
    snprintf(err, sizeof(err), "act as the user namespace's root (%u:%u): %s", root_uid, root_gid, strerror(saved));
    report_error("sysctl", saved, err);
    goto done;
  }
  for (size_t i = 0; i < spec->nsysctls; i++) {
    char path[4200];
    int length = snprintf(path, sizeof(path), "/proc/sys/%s", spec->sysctls[i].key);
    if (length < 0 || (size_t)length >= sizeof(path)) {
      report_error("sysctl", ENAMETOOLONG, "sysctl name too long");
      goto done;
    }
    /* net.ipv4.ip_forward names the file net/ipv4/ip_forward; a name with slashes is a path. */
    if (strchr(spec->sysctls[i].key, '/') == NULL) {
      for (int c = 10; c < length; c++) if (path[c] == '.') path[c] = '/';
    }
    if (write_file(path, spec->sysctls[i].value) != 0) {
      int saved = errno;
      snprintf(err, sizeof(err), "sysctl %s=%s: %s", spec->sysctls[i].key, spec->sysctls[i].value, strerror(saved));
      report_error("sysctl", saved, err);
      goto done;
    }
  }
  /* Back to root (the saved uid) for the pins: effective capabilities return with it. */
  if (seteuid(0) != 0 || setegid(0) != 0) {
    report_error("sysctl", errno, "return to root after the sysctls");
    goto done;
  }
  for (size_t i = 0; i < spec->npins; i++) {
    char source[64];
    if (spec->pins[i].nstype == CLONE_NEWUSER) {
      snprintf(source, sizeof(source), "/proc/%d/ns/user", user_holder);
    } else {
      snprintf(source, sizeof(source), "/proc/self/ns/%s", spec->pins[i].name);
    }
    if (mount(source, spec->pins[i].target, NULL, MS_BIND, NULL) != 0) {
      int saved = errno;
      snprintf(err, sizeof(err), "bind %s on %s: %s", source, spec->pins[i].target, strerror(saved));
      report_error("pin", saved, err);
      goto done;
    }
  }
  char ok[64];
  snprintf(ok, sizeof(ok), "ok\t0\t%d\n", getpid());
  report(ok);
  status = 0;
done:
  if (user_holder > 0) {
    close(release);
    while (waitpid(user_holder, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  return status;
}

/* ---- exec in a running container ------------------------------------------------------- */


/* Applies "<width> <height>\n" lines read from the resize pipe to the terminal. */
static void apply_resizes(int resize_fd, int master, char *pending, size_t *used) {
  ssize_t got = read(resize_fd, pending + *used, 255 - *used);
  if (got <= 0) return;
  *used += (size_t)got;
  pending[*used] = '\0';
  char *line = pending, *newline;
  while ((newline = strchr(line, '\n')) != NULL) {
    *newline = '\0';
    unsigned int width = 0, height = 0;
    if (sscanf(line, "%u %u", &width, &height) == 2) {
      struct winsize size = {(unsigned short)height, (unsigned short)width, 0, 0};
      ioctl(master, TIOCSWINSZ, &size);
    }
    line = newline + 1;
  }
  *used = strlen(line);
  memmove(pending, line, *used);
  if (*used >= 255) *used = 0;
}

/*
 * MODE_EXEC: the process joins the running container (its namespaces and cgroups, from the
 * spec) with this monitor's stdin, stdout and stderr, or, with a tty, a terminal whose
 * output is copied to stdout and fed from stdin (resized from RESIZE_FD). Reports
 * "ok\t<pid>\t<monitor pid>" once it runs, then "exit\t<code>\t<signal>" when it ended.
 */
static int run_exec(const struct spec *spec, int resize_fd) {
  int console[2] = {-1, -1}, tty_master = -1;
  int child_stdio[3] = {0, 1, 2};
  if (spec->tty && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, console) != 0) {
    report_error("tty", errno, "socketpair");
    return 1;
  }
  pid_t pid = start_container(spec, child_stdio, console, &tty_master);
  if (pid < 0) return 1;
  char ok[64];
  snprintf(ok, sizeof(ok), "ok\t%d\t%d\n", pid, getpid());
  report(ok);

  int status = 0;
  if (spec->tty && tty_master >= 0) {
    /* Relay: stdin -> terminal, terminal -> stdout, until the terminal has no writer left.
       Input waits (pending) while the terminal is full, so a process busy writing its echo
       never deadlocks against the relay writing its input. */
    int input_open = 1;
    char pending[256];
    size_t pending_used = 0;
    int child_done = 0;
    stdin_fd = tty_master;
    stdin_is_tty = 1;
    fcntl(tty_master, F_SETFL, fcntl(tty_master, F_GETFL) | O_NONBLOCK);
    for (;;) {
      struct pollfd fds[3] = {{tty_master, (short)(POLLIN | (input_used > 0 ? POLLOUT : 0)), 0},
                              {input_open && input_used == 0 ? 0 : -1, POLLIN, 0}, {resize_fd, POLLIN, 0}};
      int ready = poll(fds, 3, child_done ? 100 : 500);
      if (ready < 0 && errno != EINTR) break;
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        char data[65536];
        ssize_t count = read(tty_master, data, sizeof(data));
        if (count > 0) {
          if (write_all_fd(1, data, (size_t)count) != 0) kill(pid, SIGHUP);
        } else if (count == 0 || (errno != EINTR && errno != EAGAIN)) {
          break; /* EIO: the last writer closed its end */
        }
      }
      if (fds[0].revents & POLLOUT) flush_input();
      if (input_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
        char data[65536];
        ssize_t count = read(0, data, sizeof(data));
        if (count > 0) {
          send_input(data, (size_t)count);
        } else if (count == 0 || (errno != EINTR && errno != EAGAIN)) {
          input_open = 0;
          char eot = 4; /* end of input at the terminal: ^D */
          ssize_t ignored = write(tty_master, &eot, 1);
          (void)ignored;
        }
      }
      if (resize_fd >= 0 && (fds[2].revents & POLLIN)) apply_resizes(resize_fd, tty_master, pending, &pending_used);
      if (resize_fd >= 0 && (fds[2].revents & (POLLHUP | POLLERR)) && !(fds[2].revents & POLLIN)) resize_fd = -1;
      if (!child_done && waitpid(pid, &status, WNOHANG) == pid) child_done = 1;
      if (child_done && ready == 0) break; /* exited, and its terminal went quiet */
    }
    close(tty_master);
  }
  close(0);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  /* Leaves no descriptor of the caller's streams open, so its readers see EOF. */
  close(1);
  close(2);
  int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  int signal_number = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  char text[64];
  snprintf(text, sizeof(text), "exit\t%d\t%d\n", exit_code, signal_number);
  report(text);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: swiftlet-monitor SPEC REPORT_FD [RESIZE_FD]\n"
                    "(started by swiftlet for each container; not meant to be run by hand)\n");
    return 2;
  }
  report_fd = atoi(argv[2]);
  int resize_fd = argc == 4 ? atoi(argv[3]) : -1;
  int highest = resize_fd > report_fd ? resize_fd : report_fd;
  /* Nothing the agent's process leaked without CLOEXEC may reach a container. */
  if (syscall(SYS_close_range, (unsigned int)highest + 1, ~0U, 0) != 0) {
    for (int fd = highest + 1; fd < 1024; fd++) close(fd);
  }
  fcntl(report_fd, F_SETFD, FD_CLOEXEC);
  if (resize_fd >= 0) fcntl(resize_fd, F_SETFD, FD_CLOEXEC);

  static struct spec spec;
  char err[1024];
  if (spec_load(argv[1], &spec, err, sizeof(err)) != 0) {
    report_error("spec", EINVAL, err);
    return 1;
  }

  if (spec.mode == MODE_PIN) return pin_namespaces(&spec);
  if (spec.mode == MODE_EXEC) {
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_NAME, "swiftlet-exec", 0, 0, 0);
    return run_exec(&spec, resize_fd);
  }

  /* Its own session: a signal to the agent's process group does not reach it, and it goes on
     (adopted by init) if the agent exits; while the agent runs, the agent reaps it. */
  setsid();
  prctl(PR_SET_NAME, "swiftlet-mon", 0, 0, 0);
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
  }

  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGCHLD);
  sigaddset(&handled, SIGUSR1);
  sigprocmask(SIG_BLOCK, &handled, NULL);
  int signals = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signals < 0) {
    report_error("monitor", errno, "signalfd: cannot watch the container's exit");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, SIG_IGN); /* the container is stopped through its own pid or cgroup */
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);

  log_path = spec.log_path;
  open_log();

  int out[2] = {-1, -1}, errs[2] = {-1, -1}, in[2] = {-1, -1}, tty_master = -1, console[2] = {-1, -1};
  int child_stdio[3] = {devnull, -1, -1};
  for (int i = 0; i < MAX_CLIENTS; i++) clients[i].fd = -1;
  stdin_once = spec.stdin_once;
  if (spec.stdin_open && !spec.tty) {
    if (pipe2(in, O_CLOEXEC) != 0) {
      report_error("stdio", errno, "pipe");
      return 1;
    }
    child_stdio[0] = in[0];
  }
  int listener = -1;
  if (spec.attach_name) {
    listener = open_attach_socket(spec.attach_name);
    if (listener < 0) {
      int saved = errno;
      snprintf(err, sizeof(err), "attach socket %s: %s", spec.attach_name, strerror(saved));
      report_error("attach", saved, err);
      return 1;
    }
  }
  if (spec.tty) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, console) != 0) {
      report_error("tty", errno, "socketpair");
      return 1;
    }
  } else {
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(errs, O_CLOEXEC) != 0) {
      report_error("stdio", errno, "pipe");
      return 1;
    }
    child_stdio[1] = out[1];
    child_stdio[2] = errs[1];
  }

  pid_t pid = start_container(&spec, child_stdio, console, &tty_master);
  if (out[1] >= 0) close(out[1]);
  if (errs[1] >= 0) close(errs[1]);
  if (in[0] >= 0) close(in[0]);
  if (pid < 0) return 1;
  if (spec.stdin_open) {
    stdin_fd = spec.tty ? tty_master : in[1];
    stdin_is_tty = spec.tty;
    if (stdin_fd >= 0) fcntl(stdin_fd, F_SETFL, fcntl(stdin_fd, F_GETFL) | O_NONBLOCK);
  } else if (in[1] >= 0) {
    close(in[1]);
  }
  if (spec.pid_path) {
    char text[64];
    snprintf(text, sizeof(text), "%d\n", pid);
    write_atomically(spec.pid_path, text);
  }
  char ok[64];
  snprintf(ok, sizeof(ok), "ok\t%d\t%d\n", pid, getpid());
  report(ok);
  close(report_fd);
  report_fd = -1;

  struct stream streams[2];
  memset(streams, 0, sizeof(streams));
  streams[0].fd = spec.tty ? tty_master : out[0];
  streams[0].tty = spec.tty;
  streams[0].name = "stdout";
  streams[1].fd = spec.tty ? -1 : errs[0];
  streams[1].name = "stderr";

  int exited = 0, status = 0;
  struct timespec exit_time = {0, 0};
  long drain_deadline_ms = -1;
  for (;;) {
    struct pollfd fds[5 + MAX_CLIENTS] = {{signals, POLLIN, 0}, {streams[0].fd, POLLIN, 0}, {streams[1].fd, POLLIN, 0},
                                          {exited ? -1 : listener, POLLIN, 0}};
    for (int i = 0; i < MAX_CLIENTS; i++) {
      int full = clients[i].used == sizeof(clients[i].buffer);
      fds[4 + i] = (struct pollfd){clients[i].fd, (short)(input_used > 0 || full ? 0 : POLLIN), 0};
    }
    fds[4 + MAX_CLIENTS] = (struct pollfd){input_used > 0 ? stdin_fd : -1, POLLOUT, 0};
    int open_streams = (streams[0].fd >= 0) + (streams[1].fd >= 0);
    if (exited && open_streams == 0) break;
    int timeout = -1;
    if (exited) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      long now_ms = now.tv_sec * 1000 + now.tv_nsec / 1000000;
      if (drain_deadline_ms < 0) drain_deadline_ms = now_ms + 2000;
      if (now_ms >= drain_deadline_ms) break; /* something the container left holds the pipe */
      timeout = (int)(drain_deadline_ms - now_ms);
    }
    int ready = poll(fds, 5 + MAX_CLIENTS, timeout);
    if (ready < 0 && errno != EINTR) break;
    if (fds[3].revents & POLLIN) accept_client(listener);
    if (fds[4 + MAX_CLIENTS].revents) {
      flush_input();
      for (int i = 0; i < MAX_CLIENTS && input_used == 0; i++) parse_client(&clients[i], spec.tty ? tty_master : -1);
    }
    for (int i = 0; i < MAX_CLIENTS; i++) {
      if (clients[i].fd >= 0 && fds[4 + i].fd == clients[i].fd && (fds[4 + i].revents & (POLLIN | POLLHUP | POLLERR))) {
        read_client(&clients[i], spec.tty ? tty_master : -1);
      }
    }
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo info;
      while (read(signals, &info, sizeof(info)) == sizeof(info)) {
        if (info.ssi_signo == SIGUSR1) open_log();
      }
      int child_status;
      pid_t reaped;
      while ((reaped = waitpid(-1, &child_status, WNOHANG)) > 0) {
        if (reaped == pid) {
          exited = 1;
          status = child_status;
          clock_gettime(CLOCK_REALTIME, &exit_time);
        }
      }
    }
    for (int i = 0; i < 2; i++) {
      if (streams[i].fd < 0 || !(fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char data[65536];
      ssize_t count = read(streams[i].fd, data, sizeof(data));
      if (count > 0) {
        consume(&streams[i], data, (size_t)count);
        broadcast((unsigned char)(i + 1), data, (size_t)count);
      } else if (count == 0 || (errno != EINTR && errno != EAGAIN)) {
        /* EOF (or EIO from a pty whose last writer is gone) */
        flush_partial(&streams[i]);
        close(streams[i].fd);
        streams[i].fd = -1;
      }
    }
  }
  for (int i = 0; i < 2; i++) flush_partial(&streams[i]);
  for (int i = 0; i < MAX_CLIENTS; i++) {
    if (clients[i].fd >= 0) close(clients[i].fd);
    clients[i].fd = -1;
  }
  if (listener >= 0) {
    close(listener);
    unlink(spec.attach_name);
  }
  if (!exited) {
    /* The loop ended on an error: the exit is still the container's own. */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    clock_gettime(CLOCK_REALTIME, &exit_time);
  }

  int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  int signal_number = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  char text[256];
  snprintf(text, sizeof(text), "exit_code=%d\nsignal=%d\nfinished_at=%lld\n", exit_code, signal_number,
           (long long)exit_time.tv_sec * 1000000000LL + exit_time.tv_nsec);
  write_atomically(spec.exit_path, text);
  return 0;
}

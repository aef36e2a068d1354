/*
 * The container side of swiftlet-monitor: what the cloned child does, single-threaded, between
 * clone and execve. Every failure is reported through the error pipe as
 * "<stage>\t<errno>\t<detail>" and ends the child; a successful execve closes the pipe
 * (O_CLOEXEC) with nothing written.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <sched.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>


static int error_fd = -1;
static int mode_exec = 0; /* the process is an exec into a running container */

static void exec_command(const struct spec *spec) __attribute__((noreturn));
static void hold_pid_namespace(void) __attribute__((noreturn));

/* Reports a failure to the monitor and exits the child. */
static void __attribute__((noreturn, format(printf, 3, 4)))
die(const char *stage, int code, const char *format, ...) {
  char detail[1024];
  va_list args;
  va_start(args, format);
  vsnprintf(detail, sizeof(detail), format, args);
  va_end(args);
  char message[1200];
  int length = snprintf(message, sizeof(message), "%s\t%d\t%s", stage, code, detail);
  if (error_fd >= 0 && length > 0) {
    ssize_t ignored = write(error_fd, message, (size_t)length < sizeof(message) ? (size_t)length : sizeof(message) - 1);
    (void)ignored;
  }
  _exit(127);
}

static int openat2_in_root(int root, const char *path, int flags, mode_t mode) {
  struct open_how how;
  memset(&how, 0, sizeof(how));
  how.flags = (unsigned long long)(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  while (*path == '/') path++;
  if (*path == '\0') path = ".";
  return (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
}

/*
 * Opens target inside the rootfs as an O_PATH fd, creating what is missing (directories, or
 * an empty file when the source is a file). Symlinks and ".." resolve inside the rootfs, so a
 * target can never land outside it (the kernel's RESOLVE_IN_ROOT).
 */
static int open_mount_target(int root, const char *target, int directory) {
  int fd = openat2_in_root(root, target, O_PATH, 0);
  if (fd >= 0) return fd;
  if (errno != ENOENT) return -1;
  char *copy = strdup(target);
  if (copy == NULL) return -1;
  /* Create each missing component below the deepest existing one. */
  size_t length = strlen(copy);
  for (size_t i = 1; i <= length; i++) {
    if (copy[i] != '/' && copy[i] != '\0') continue;
    char saved = copy[i];
    copy[i] = '\0';
    int existing = openat2_in_root(root, copy, O_PATH, 0);
    if (existing >= 0) {
      close(existing);
    } else if (errno == ENOENT) {
      char *slash = strrchr(copy, '/');
      char *name = slash ? slash + 1 : copy;
      char parent_path[4096];
      snprintf(parent_path, sizeof(parent_path), "%.*s", slash ? (int)(slash - copy) : 0, copy);
      int parent = openat2_in_root(root, parent_path, O_PATH | O_DIRECTORY, 0);
      if (parent < 0) { free(copy); return -1; }
      int last = saved == '\0';
      int made;
      if (last && !directory) {
        made = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (made >= 0) close(made), made = 0;
      } else {
        made = mkdirat(parent, name, 0755);
      }
      int saved_errno = errno;
      close(parent);
      if (made != 0 && saved_errno != EEXIST) { errno = saved_errno; free(copy); return -1; }
    } else {
      free(copy);
      return -1;
    }
    copy[i] = saved;
  }
  free(copy);
  return openat2_in_root(root, target, O_PATH, 0);
}

static void fd_path(int fd, char *buffer, size_t size) { snprintf(buffer, size, "/proc/self/fd/%d", fd); }

static void mount_in_root(int root, const char *source, const char *target, const char *type,
                          unsigned long flags, const char *data, int directory) {
  int fd = open_mount_target(root, target, directory);
  if (fd < 0) die("mount", errno, "cannot create mount point %s: %s", target, strerror(errno));
  char path[64];
  fd_path(fd, path, sizeof(path));
  if (mount(source, path, type, flags, data) != 0) {
    int saved = errno;
    die("mount", saved, "mount %s on %s (%s): %s", source ? source : type, target, type ? type : "bind", strerror(saved));
  }
  close(fd);
}

static void remount_in_root(int root, const char *target, unsigned long flags, const char *what) {
  int fd = openat2_in_root(root, target, O_PATH, 0);
  if (fd < 0) die("mount", errno, "cannot reopen %s: %s", target, strerror(errno));
  char path[64];
  fd_path(fd, path, sizeof(path));
  if (mount(NULL, path, NULL, flags, NULL) != 0) {
    int saved = errno;
    die("mount", saved, "%s %s: %s", what, target, strerror(saved));
  }
  close(fd);
}

/* Makes a mount read-only, changing nothing else (a MS_REMOUNT would clear nosuid, nodev and
   noexec the mount had); recursive: every mount below it too. */
static void make_readonly(int root, const char *target, int recursive) {
  int fd = openat2_in_root(root, target, O_PATH, 0);
  struct mount_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (fd < 0 || syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof(attr)) != 0) {
    die("mount", errno, "read-only %s: %s", target, strerror(errno));
  }
  close(fd);
}

static void make_device(int root, const char *name, unsigned int major_number, unsigned int minor_number) {
  int dev = openat2_in_root(root, "/dev", O_PATH | O_DIRECTORY, 0);
  if (dev < 0) die("devices", errno, "cannot open /dev: %s", strerror(errno));
  if (mknodat(dev, name, S_IFCHR | 0666, makedev(major_number, minor_number)) != 0 && errno != EEXIST) {
    die("devices", errno, "mknod /dev/%s: %s", name, strerror(errno));
  }
  /* mknod honours the umask; the nodes are world read-write as in every runtime. */
  if (fchmodat(dev, name, 0666, 0) != 0) die("devices", errno, "chmod /dev/%s: %s", name, strerror(errno));
  close(dev);
}

static void make_symlink(int root, const char *target, const char *link) {
  int dev = openat2_in_root(root, "/dev", O_PATH | O_DIRECTORY, 0);
  if (dev < 0) die("devices", errno, "cannot open /dev: %s", strerror(errno));
  if (symlinkat(target, dev, link) != 0 && errno != EEXIST) die("devices", errno, "symlink /dev/%s: %s", link, strerror(errno));
  close(dev);
}

static int is_directory_source(const char *source) {
  struct stat info;
  if (stat(source, &info) != 0) die("mount", errno, "bind source %s: %s", source, strerror(errno));
  return S_ISDIR(info.st_mode);
}

/* /sys/fs/cgroup as runc makes it without a cgroup namespace: the container's own cgroup
   directories, bound at their hierarchies' names (read-only unless privileged). v2: the one
   directory is /sys/fs/cgroup. */
static void mount_cgroupfs(int root, const struct spec *spec) {
  if (spec->ncgroupfs == 0) return;
  unsigned long readonly = spec->cgroupfs_writable ? 0 : 1;
  if (spec->ncgroupfs == 1 && strcmp(spec->cgroupfs[0].name, ".") == 0) {
    mount_in_root(root, spec->cgroupfs[0].source, "/sys/fs/cgroup", NULL, MS_BIND | MS_REC, NULL, 1);
    if (readonly) make_readonly(root, "/sys/fs/cgroup", 1);
    return;
  }
  mount_in_root(root, "tmpfs", "/sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755", 1);
  int directory = openat2_in_root(root, "/sys/fs/cgroup", O_PATH | O_DIRECTORY, 0);
  if (directory < 0) die("cgroupfs", errno, "open /sys/fs/cgroup: %s", strerror(errno));
  for (size_t i = 0; i < spec->ncgroupfs; i++) {
    const struct spec_cgroupfs *entry = &spec->cgroupfs[i];
    if (entry->link_to) {
      if (symlinkat(entry->link_to, directory, entry->name) != 0 && errno != EEXIST) {
        die("cgroupfs", errno, "symlink /sys/fs/cgroup/%s: %s", entry->name, strerror(errno));
      }
      continue;
    }
    char target[512];
    snprintf(target, sizeof(target), "/sys/fs/cgroup/%s", entry->name);
    mount_in_root(root, entry->source, target, NULL, MS_BIND | MS_REC, NULL, 1);
    if (readonly) make_readonly(root, target, 1);
  }
  close(directory);
  if (readonly) make_readonly(root, "/sys/fs/cgroup", 0);
}

/* A bind mount of source whose files' owners are seen through user namespace user_fd (an
   idmapped mount: the host's 0 is the container's root). Not recursive: mounts below source
   are not carried. */
static void mount_idmapped_in_root(int root, const char *source, const char *target, int directory, int user_fd) {
  if (user_fd < 0) die("mount", EINVAL, "idmapped mount of %s without a user namespace", source);
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) die("mount", errno, "clone %s: %s", source, strerror(errno));
  struct mount_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = (unsigned long long)user_fd;
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
    die("mount", errno, "idmap %s (its filesystem may not support idmapped mounts): %s", source, strerror(errno));
  }
  int fd = open_mount_target(root, target, directory);
  if (fd < 0) die("mount", errno, "cannot create mount point %s: %s", target, strerror(errno));
  if (syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
    die("mount", errno, "mount %s on %s (idmapped): %s", source, target, strerror(errno));
  }
  close(fd);
  close(tree);
}

/* The rootfs: the standard mounts, the binds, then pivot_root into it. user_fd: the user
   namespace the container joins (idmapped binds), or -1. */
static void prepare_rootfs(const struct spec *spec, int user_fd) {
  /* Bidirectional (rshared) binds must stay peers of the host's mount, so that what the
     container mounts under them reaches the host (CSI plugins): their trees are cloned
     (detached, still in the host mount's peer group) before the whole namespace is made a
     slave of the host's. */
  int *shared_trees = calloc(spec->nbinds ? spec->nbinds : 1, sizeof(int));
  if (shared_trees == NULL) die("rootfs", ENOMEM, "out of memory");
  for (size_t i = 0; i < spec->nbinds; i++) {
    shared_trees[i] = -1;
    const struct spec_bind *bind = &spec->binds[i];
    if (bind->idmap || (bind->propagation & MS_SHARED) == 0) continue;
    shared_trees[i] = (int)syscall(SYS_open_tree, AT_FDCWD, bind->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (shared_trees[i] < 0) die("mount", errno, "clone %s: %s", bind->source, strerror(errno));
  }
  /* Nothing else done here may propagate back to the host. */
  if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) != 0) die("rootfs", errno, "make / rslave: %s", strerror(errno));
  if (mount(spec->rootfs, spec->rootfs, NULL, MS_BIND | MS_REC, NULL) != 0) {
    die("rootfs", errno, "bind %s onto itself: %s", spec->rootfs, strerror(errno));
  }
  int root = open(spec->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) die("rootfs", errno, "open %s: %s", spec->rootfs, strerror(errno));

  mount_in_root(root, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 1);
  int host_dev = spec->dev_mode && strcmp(spec->dev_mode, "host") == 0;
  if (host_dev) {
    mount_in_root(root, "/dev", "/dev", NULL, MS_BIND | MS_REC, NULL, 1);
  } else {
    mount_in_root(root, "tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k", 1);
    /* The tty group (5) as the container sees it. */
    char devpts_options[96];
    snprintf(devpts_options, sizeof(devpts_options), "newinstance,ptmxmode=0666,mode=0620,gid=%u",
             spec->has_userns_root ? spec->userns_root_gid + 5 : 5);
    mount_in_root(root, "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, devpts_options, 1);
    make_device(root, "null", 1, 3);
    make_device(root, "zero", 1, 5);
    make_device(root, "full", 1, 7);
    make_device(root, "random", 1, 8);
    make_device(root, "urandom", 1, 9);
    make_device(root, "tty", 5, 0);
    make_symlink(root, "/proc/self/fd", "fd");
    make_symlink(root, "/proc/self/fd/0", "stdin");
    make_symlink(root, "/proc/self/fd/1", "stdout");
    make_symlink(root, "/proc/self/fd/2", "stderr");
    make_symlink(root, "pts/ptmx", "ptmx");
    make_symlink(root, "/proc/kcore", "core");
  }
  mount_in_root(root, "shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k", 1);
  mount_in_root(root, "mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 1);
  /* Privileged containers (the host's /dev) get a writable /sys, as runc gives them. */
  mount_in_root(root, "sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | (host_dev ? 0 : MS_RDONLY), NULL, 1);
  mount_cgroupfs(root, spec);

  for (size_t i = 0; i < spec->nbinds; i++) {
    const struct spec_bind *bind = &spec->binds[i];
    int directory = is_directory_source(bind->source);
    if (bind->idmap) {
      mount_idmapped_in_root(root, bind->source, bind->target, directory, user_fd);
    } else if (shared_trees[i] >= 0) {
      int fd = open_mount_target(root, bind->target, directory);
      if (fd < 0) die("mount", errno, "cannot create mount point %s: %s", bind->target, strerror(errno));
      if (syscall(SYS_move_mount, shared_trees[i], "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
        die("mount", errno, "mount %s on %s (rshared): %s", bind->source, bind->target, strerror(errno));
      }
      close(fd);
      close(shared_trees[i]);
    } else {
      mount_in_root(root, bind->source, bind->target, NULL, MS_BIND | MS_REC, NULL, directory);
    }
    if (bind->readonly) make_readonly(root, bind->target, bind->recursive_readonly);
    remount_in_root(root, bind->target, bind->propagation, "propagation of");
  }
  free(shared_trees);

  /* pivot_root(".", ".") then detach the old root, as runc does. */
  int old_root = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (old_root < 0 || fchdir(root) != 0) die("rootfs", errno, "enter %s: %s", spec->rootfs, strerror(errno));
  if (syscall(SYS_pivot_root, ".", ".") != 0) die("pivot_root", errno, "pivot_root into %s: %s", spec->rootfs, strerror(errno));
  if (fchdir(old_root) != 0) die("pivot_root", errno, "fchdir: %s", strerror(errno));
  if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) != 0) die("pivot_root", errno, "make old root rslave: %s", strerror(errno));
  if (umount2(".", MNT_DETACH) != 0) die("pivot_root", errno, "detach old root: %s", strerror(errno));
  if (chdir("/") != 0) die("pivot_root", errno, "chdir /: %s", strerror(errno));
  close(old_root);
  close(root);

  for (size_t i = 0; i < spec->nreadonly; i++) {
    const char *path = spec->readonly_paths[i];
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) != 0) {
      if (errno == ENOENT) continue;
      die("readonly-paths", errno, "bind %s: %s", path, strerror(errno));
    }
    if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
      die("readonly-paths", errno, "remount %s read-only: %s", path, strerror(errno));
    }
  }
  for (size_t i = 0; i < spec->nmasked; i++) {
    const char *path = spec->masked[i];
    struct stat info;
    if (stat(path, &info) != 0) continue;
    int result = S_ISDIR(info.st_mode) ? mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0")
                                       : mount("/dev/null", path, NULL, MS_BIND, NULL);
    if (result != 0) die("masked-paths", errno, "mask %s: %s", path, strerror(errno));
  }
  if (spec->rootfs_readonly) {
    int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct mount_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.attr_set = MOUNT_ATTR_RDONLY;
    if (fd < 0 || syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
      die("rootfs", errno, "make / read-only: %s", strerror(errno));
    }
    close(fd);
  }
}

/* Without no_new_privs the filter is loaded while the process still has CAP_SYS_ADMIN (before
   the user switch), and libseccomp must not set no_new_privs behind the spec's back. */
static void apply_seccomp(const struct spec *spec) {
  scmp_filter_ctx filter = seccomp_init(spec->seccomp_default);
  if (filter == NULL) die("seccomp", EINVAL, "seccomp_init failed");
  if (seccomp_attr_set(filter, SCMP_FLTATR_CTL_NNP, spec->no_new_privs ? 1 : 0) != 0) {
    die("seccomp", EINVAL, "cannot set the no_new_privs attribute");
  }
  for (size_t i = 0; i < spec->nseccomp_rules; i++) {
    const struct spec_seccomp_rule *rule = &spec->seccomp_rules[i];
    int number = seccomp_syscall_resolve_name(rule->syscall);
    if (number == __NR_SCMP_ERROR) continue; /* not a syscall on this architecture/kernel */
    if (rule->action == spec->seccomp_default) continue;
    struct scmp_arg_cmp cmps[6];
    for (size_t a = 0; a < rule->nargs; a++) {
      cmps[a] = (struct scmp_arg_cmp){rule->arg_index[a], (enum scmp_compare)rule->arg_op[a],
                                      rule->arg_value[a], rule->arg_value2[a]};
    }
    int result = seccomp_rule_add_array(filter, rule->action, number, (unsigned int)rule->nargs, cmps);
    if (result != 0) die("seccomp", -result, "rule for %s: %s", rule->syscall, strerror(-result));
  }
  int result = seccomp_load(filter);
  if (result != 0) die("seccomp", -result, "load filter: %s", strerror(-result));
  seccomp_release(filter);
}

/* Effective and permitted sets (the bounding set was dropped before setuid). */
static void apply_capabilities(const struct spec *spec) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof(data));
  for (int i = 0; i < 2; i++) {
    unsigned int bits = (unsigned int)(spec->caps >> (32 * i));
    data[i].effective = bits;
    data[i].permitted = bits;
    /* Inheritable stays empty (CVE-2022-24769), as containerd and runc leave it. */
  }
  if (syscall(SYS_capset, &header, data) != 0) die("capabilities", errno, "capset: %s", strerror(errno));
}

/* Opens a pty in the container's own devpts and sends the master to the monitor over the
   console socket (SCM_RIGHTS); returns the slave. */
static int open_console(int console_socket) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) die("tty", errno, "open /dev/ptmx: %s", strerror(errno));
  char name[128];
  if (ptsname_r(master, name, sizeof(name)) != 0) die("tty", errno, "ptsname: %s", strerror(errno));
  int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC); /* dup2 onto 0-2 clears CLOEXEC there */
  if (slave < 0) die("tty", errno, "open %s: %s", name, strerror(errno));
  /* /dev/console is the container's pty, as runc makes it (for the container's own process
     only: an exec shares the container's mount namespace and must not replace it). */
  int console = mode_exec ? -1 : open("/dev/console", O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (console >= 0) {
    close(console);
    if (mount(name, "/dev/console", NULL, MS_BIND, NULL) != 0) die("tty", errno, "bind %s to /dev/console: %s", name, strerror(errno));
  }
  char byte = 't';
  struct iovec iov = {&byte, 1};
  char control[CMSG_SPACE(sizeof(int))];
  memset(control, 0, sizeof(control));
  struct msghdr message = {0};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  struct cmsghdr *header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(header), &master, sizeof(int));
  if (sendmsg(console_socket, &message, 0) != 1) die("tty", errno, "send the pty to the monitor: %s", strerror(errno));
  close(master);
  close(console_socket);
  return slave;
}

/* As runc: the working directory is created when the image does not have it. */
static void enter_working_directory(const char *cwd) {
  if (chdir(cwd) == 0) return;
  char path[4096];
  snprintf(path, sizeof(path), "%s", cwd);
  for (char *p = path + 1; *p; p++) {
    if (*p == '/') { *p = '\0'; mkdir(path, 0755); *p = '/'; }
  }
  mkdir(path, 0755);
  if (chdir(cwd) != 0) die("cwd", errno, "chdir %s: %s", cwd, strerror(errno));
}

/* Files this process creates (mount points in an idmapped root, /dev) belong to uid/gid on
   the host: the container's root. Changing the fs ids drops the file capabilities from the
   effective set; they are raised again (they stay permitted). */
static void act_on_files_as(unsigned int uid, unsigned int gid) {
  setfsgid(gid);
  setfsuid(uid);
  if ((unsigned int)setfsuid((uid_t)-1) != uid || (unsigned int)setfsgid((gid_t)-1) != gid) {
    die("user", EPERM, "cannot act on files as %u:%u", uid, gid);
  }
  if (raise_effective_capabilities() != 0) die("capabilities", errno, "raise the effective set: %s", strerror(errno));
}

int raise_effective_capabilities(void) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &header, data) != 0) return -1;
  data[0].effective = data[0].permitted;
  data[1].effective = data[1].permitted;
  return (int)syscall(SYS_capset, &header, data);
}

/* Enters the container's user namespace (every capability in it, none outside) as its root,
   from where the user switch below works as it does without one. */
static void join_user_namespace(int user_fd) {
  if (setns(user_fd, CLONE_NEWUSER) != 0) die("namespaces", errno, "join the user namespace: %s", strerror(errno));
  close(user_fd);
  if (setresgid(0, 0, 0) != 0) die("user", errno, "setgid 0 in the user namespace: %s", strerror(errno));
  if (setresuid(0, 0, 0) != 0) die("user", errno, "setuid 0 in the user namespace: %s", strerror(errno));
}

void container_main(const struct spec *spec, int sync_fd, int err_fd, int stdio[3], int console_socket) {
  error_fd = err_fd;
  mode_exec = spec->mode == MODE_EXEC;
  /* Wait until the monitor has put this process into its cgroups. */
  char go;
  if (read(sync_fd, &go, 1) != 1) die("sync", errno, "the monitor went away before the start");
  close(sync_fd);

  /* A user namespace is joined last, once everything that needs the host's privileges (the
     mounts, the hostname, rlimits) is done; its file is opened now, before pivot_root. */
  int user_fd = -1;
  for (size_t i = 0; i < spec->njoins; i++) {
    if (spec->joins[i].nstype == CLONE_NEWPID) continue; /* joined by the monitor before clone */
    int fd = open(spec->joins[i].path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && spec->joins[i].nstype == CLONE_NEWUSER) {
      user_fd = fd;
      continue;
    }
    if (fd < 0 || setns(fd, spec->joins[i].nstype) != 0) {
      die("namespaces", errno, "join %s: %s", spec->joins[i].path, strerror(errno));
    }
    close(fd);
  }
  if (setsid() < 0) die("session", errno, "setsid: %s", strerror(errno));
  if (user_fd >= 0 && spec->has_userns_root) act_on_files_as(spec->userns_root_uid, spec->userns_root_gid);
  if (spec->rootfs) prepare_rootfs(spec, user_fd);
  if (spec->hostname && (spec->clone_flags & CLONE_NEWUTS) &&
      sethostname(spec->hostname, strlen(spec->hostname)) != 0) {
    die("hostname", errno, "sethostname %s: %s", spec->hostname, strerror(errno));
  }
  if (spec->has_oom_score_adj) {
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    char value[16];
    int length = snprintf(value, sizeof(value), "%d", spec->oom_score_adj);
    if (fd < 0 || write(fd, value, (size_t)length) != length) die("oom_score_adj", errno, "write %d: %s", spec->oom_score_adj, strerror(errno));
    close(fd);
  }
  for (size_t i = 0; i < spec->nrlimits; i++) {
    if (setrlimit(spec->rlimits[i].resource, &spec->rlimits[i].limit) != 0) {
      die("rlimits", errno, "setrlimit %d: %s", spec->rlimits[i].resource, strerror(errno));
    }
  }
  if (spec->cwd && user_fd < 0) enter_working_directory(spec->cwd);
  if (spec->tty) {
    int slave = open_console(console_socket);
    if (ioctl(slave, TIOCSCTTY, 0) != 0) die("tty", errno, "TIOCSCTTY: %s", strerror(errno));
    stdio[0] = stdio[1] = stdio[2] = slave;
  }
  for (int i = 0; i < 3; i++) {
    if (stdio[i] >= 0 && dup2(stdio[i], i) != i) die("stdio", errno, "dup2: %s", strerror(errno));
  }
  if (user_fd >= 0) {
    join_user_namespace(user_fd);
    if (spec->cwd) enter_working_directory(spec->cwd);
  }
  if (spec->seccomp && !spec->no_new_privs) apply_seccomp(spec);
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) die("user", errno, "PR_SET_KEEPCAPS: %s", strerror(errno));
  if (setgroups(spec->ngroups, spec->ngroups ? (gid_t *)spec->groups : NULL) != 0) die("user", errno, "setgroups: %s", strerror(errno));
  if (setresgid(spec->gid, spec->gid, spec->gid) != 0) die("user", errno, "setgid %u: %s", spec->gid, strerror(errno));
  if (spec->caps_set) {
    /* The bounding set is dropped while still privileged; effective/permitted after setuid.
       Up to the running kernel's last capability, which may be newer than these headers. */
    int last = CAP_LAST_CAP;
    FILE *file = fopen("/proc/sys/kernel/cap_last_cap", "re");
    if (file) {
      if (fscanf(file, "%d", &last) != 1) last = CAP_LAST_CAP;
      fclose(file);
    }
    for (int cap = 0; cap <= last; cap++) {
      if ((cap >= 64 || !(spec->caps & (1ULL << cap))) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
        die("capabilities", errno, "drop %d from the bounding set: %s", cap, strerror(errno));
      }
    }
  }
  if (setresuid(spec->uid, spec->uid, spec->uid) != 0) die("user", errno, "setuid %u: %s", spec->uid, strerror(errno));
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) die("user", errno, "PR_SET_KEEPCAPS: %s", strerror(errno));
  if (spec->caps_set) apply_capabilities(spec);
  if (spec->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs", errno, "prctl: %s", strerror(errno));
  if (spec->seccomp && spec->no_new_privs) apply_seccomp(spec);

  if (spec->pause) hold_pid_namespace();
  exec_command(spec);
}

static void on_signal(int number) { (void)number; }

static void on_stop(int number) { _exit(number == SIGTERM ? 0 : 128 + number); }

/* PID 1 of a pod's shared pid namespace: holds it open (a pid namespace ends with its first
   process), reaps the orphans the pod's containers leave, exits on SIGTERM or SIGINT. */
static void hold_pid_namespace(void) {
  /* Nothing execs, so O_CLOEXEC closes nothing: close every descriptor (the error pipe's end
     tells the monitor it started; the monitor's report pipe must reach EOF for the agent). */
  error_fd = -1;
  if (syscall(SYS_close_range, 0U, ~0U, 0) != 0) {
    for (int fd = 0; fd < 1024; fd++) close(fd);
  }
  prctl(PR_SET_NAME, "swiftlet-pause", 0, 0, 0);
  signal(SIGTERM, on_stop);
  signal(SIGINT, on_stop);
  /* SIGCHLD stays blocked but for sigsuspend, so none is lost between reaping and waiting. */
  signal(SIGCHLD, on_signal);
  sigset_t blocked, waiting;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGCHLD);
  sigprocmask(SIG_BLOCK, &blocked, &waiting);
  sigdelset(&waiting, SIGCHLD);
  for (;;) {
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    sigsuspend(&waiting);
  }
}

/* execve with the PATH of the container's environment, like runc (not execvp: glibc's execvp
   runs a file the kernel refuses with ENOEXEC as a shell script, hiding "exec format error"). */
static void exec_command(const struct spec *spec) {
  const char *command = spec->argv[0];
  if (strchr(command, '/')) {
    execve(command, spec->argv, spec->env);
    int saved = errno;
    die("exec", saved, "exec %s: %s", command, strerror(saved));
  }
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (size_t i = 0; i < spec->envc; i++) {
    if (strncmp(spec->env[i], "PATH=", 5) == 0) path = spec->env[i] + 5;
  }
  int denied = 0;
  char candidate[4096];
  for (const char *start = path;; ) {
    const char *end = strchr(start, ':');
    size_t length = end ? (size_t)(end - start) : strlen(start);
    snprintf(candidate, sizeof(candidate), "%.*s/%s", (int)length, length ? start : ".", command);
    execve(candidate, spec->argv, spec->env);
    if (errno == EACCES) {
      denied = 1;
    } else if (errno != ENOENT && errno != ENOTDIR) {
      int saved = errno;
      die("exec", saved, "exec %s (%s): %s", command, candidate, strerror(saved));
    }
    if (!end) break;
    start = end + 1;
  }
  int code = denied ? EACCES : ENOENT;
  die("exec", code, "exec %s: %s in PATH %s", command, strerror(code), path);
}

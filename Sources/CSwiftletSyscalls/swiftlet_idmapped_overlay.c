/* An overlay mount over idmapped layers (the root filesystem of a container in a user
   namespace), with the new mount API: Linux 6.8 or later (layers given by descriptor). */
#define _GNU_SOURCE 1
#include "swiftlet_syscalls.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

struct overlay_request {
  const char *const *lowers;
  size_t nlowers;
  const char *directory;
  const char *target;
  const char *userns_path;
  unsigned int uid, gid;
  char *message;
  size_t message_length;
  int error;
};

static int fail(struct overlay_request *request, const char *what, const char *path) {
  request->error = errno ? errno : EINVAL;
  snprintf(request->message, request->message_length, "%s %s: %s", what, path, strerror(request->error));
  return -1;
}

/* A detached copy of the mount at path whose owners are seen through user namespace userns. */
static int idmapped_tree(struct overlay_request *request, const char *path, int userns) {
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) return fail(request, "clone the mount of", path);
  struct mount_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = (unsigned long long)userns;
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
    fail(request, "idmap", path);
    close(tree);
    return -1;
  }
  return tree;
}

static int config_fd(struct overlay_request *request, int fs, const char *key, int fd, const char *path) {
  if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_FD, key, NULL, fd) != 0) {
    char what[64];
    snprintf(what, sizeof(what), "overlay %s", key);
    return fail(request, what, path);
  }
  return 0;
}

static void *mount_overlay(void *argument) {
  struct overlay_request *request = argument;
  int userns = -1, fs = -1, directory = -1, upper = -1, work = -1, mounted = -1;
  /* The detached layer mounts must stay open until the overlay is made: closing one's last
     descriptor dissolves it, and overlayfs could not clone it any more. */
  int *lowers = calloc(request->nlowers ? request->nlowers : 1, sizeof(int));
  size_t nlowers = 0;
  errno = 0;
  if (lowers == NULL) { fail(request, "allocate", "layers"); return NULL; }
  /* Overlayfs works in its upper layer with its mounter's credentials: they must be the
     container's root, whom the idmapped layers map to their owner. The file capabilities the
     fs-id change drops from the effective set are raised again (this thread's alone). */
  setfsgid(request->gid);
  setfsuid(request->uid);
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &header, data) != 0) { fail(request, "capget", ""); goto out; }
  data[0].effective = data[0].permitted;
  data[1].effective = data[1].permitted;
  if (syscall(SYS_capset, &header, data) != 0) { fail(request, "capset", ""); goto out; }

  userns = open(request->userns_path, O_RDONLY | O_CLOEXEC);
  if (userns < 0) { fail(request, "open the user namespace", request->userns_path); goto out; }
  fs = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
  if (fs < 0) { fail(request, "fsopen", "overlay"); goto out; }
  for (size_t i = 0; i < request->nlowers; i++) {
    int lower = idmapped_tree(request, request->lowers[i], userns);
    if (lower < 0) goto out;
    lowers[nlowers++] = lower;
    if (config_fd(request, fs, "lowerdir+", lower, request->lowers[i]) != 0) goto out;
  }
  directory = idmapped_tree(request, request->directory, userns);
  if (directory < 0) goto out;
  upper = openat(directory, "upper", O_PATH | O_DIRECTORY | O_CLOEXEC);
  work = openat(directory, "work", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (upper < 0 || work < 0) { fail(request, "open upper and work in", request->directory); goto out; }
  if (config_fd(request, fs, "upperdir", upper, request->directory) != 0) goto out;
  if (config_fd(request, fs, "workdir", work, request->directory) != 0) goto out;
  if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0) {
    fail(request, "create the overlay at", request->target);
    /* The kernel's own words, when it has some ("overlayfs: ..."). */
    char log[256];
    ssize_t got = read(fs, log, sizeof(log) - 1);
    if (got > 0) {
      log[got] = '\0';
      if (log[got - 1] == '\n') log[got - 1] = '\0';
      size_t used = strlen(request->message);
      snprintf(request->message + used, request->message_length - used, " (%s)", log);
    }
    goto out;
  }
  /* nodev: a device node shipped in an image must not open a host device. */
  mounted = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
  if (mounted < 0) { fail(request, "fsmount", request->target); goto out; }
  if (syscall(SYS_move_mount, mounted, "", AT_FDCWD, request->target, MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    fail(request, "mount the overlay on", request->target);
    goto out;
  }
  request->error = 0;
out:
  if (mounted >= 0) close(mounted);
  if (upper >= 0) close(upper);
  if (work >= 0) close(work);
  if (directory >= 0) close(directory);
  if (fs >= 0) close(fs);
  if (userns >= 0) close(userns);
  for (size_t i = 0; i < nlowers; i++) close(lowers[i]);
  free(lowers);
  return NULL;
}

int swl_mount_idmapped_overlay(const char *const *lowers, size_t nlowers, const char *directory, const char *target,
                               const char *userns_path, unsigned int uid, unsigned int gid,
                               char *message, size_t message_length) {
  struct overlay_request request = {lowers, nlowers, directory, target, userns_path, uid, gid, message, message_length, EINVAL};
  if (message_length > 0) message[0] = '\0';
  pthread_t thread;
  int created = pthread_create(&thread, NULL, mount_overlay, &request);
  if (created != 0) {
    snprintf(message, message_length, "pthread_create: %s", strerror(created));
    errno = created;
    return -1;
  }
  pthread_join(thread, NULL);
  if (request.error != 0) {
    errno = request.error;
    return -1;
  }
  return 0;
}

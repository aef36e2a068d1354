/*
 * The launch spec the agent writes for swiftlet-monitor: one directive per line, fields
 * separated by tabs, with \t, \n and \\ escaped inside fields. Unknown directives are errors,
 * so an agent and a monitor of different versions fail loudly rather than half-isolate.
 */
#ifndef SWIFTLET_MONITOR_SPEC_H
#define SWIFTLET_MONITOR_SPEC_H

#include <stddef.h>
#include <sys/resource.h>

#define SPEC_MAX_FIELDS 6

struct spec_bind {
  char *source;
  char *target;     /* inside the rootfs */
  int readonly;
  int recursive_readonly;
  unsigned long propagation; /* MS_PRIVATE, MS_SLAVE or MS_SHARED (with MS_REC) */
  int idmap;        /* an idmapped mount through the container's user namespace */
};

struct spec_cgroupfs {
  char *source;   /* the container's cgroup directory on the host */
  char *name;     /* under /sys/fs/cgroup: a hierarchy ("cpu,cpuacct"), an alias link, or "." for v2 */
  char *link_to;  /* non-NULL: name is a symlink to this hierarchy */
};

struct spec_rlimit {
  int resource;
  struct rlimit limit;
};

struct spec_pin {
  int nstype;   /* CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS or CLONE_NEWUSER */
  char *name;   /* net, ipc, uts, user */
  char *target; /* an existing file the namespace is bind-mounted on */
};

struct spec_sysctl {
  char *key;    /* net.ipv4.ip_forward or net/ipv4/ip_forward */
  char *value;
};

/* What the monitor is asked to do. */
enum spec_mode {
  MODE_CONTAINER = 0, /* supervise a container: log its output, record its exit */
  MODE_EXEC,          /* run a process in a running container with the caller's stdio; report its exit */
  MODE_PIN,           /* create namespaces, set them up, bind-mount them on files, exit (pod sandboxes) */
};

/* One line of a user namespace's uid_map or gid_map. */
struct spec_idmap {
  unsigned int container_id, host_id, length;
};

struct spec_join {
  int nstype; /* CLONE_NEWNET, ... */
  char *path;
};

struct spec_seccomp_rule {
  unsigned int action; /* SCMP_ACT_* */
  char *syscall;
  /* argument comparisons, all of which must hold: index, op (SCMP_CMP_*), value, value2 */
  size_t nargs;
  unsigned int arg_index[6];
  int arg_op[6];
  unsigned long long arg_value[6];
  unsigned long long arg_value2[6];
};

struct spec {
  enum spec_mode mode;
  int pause;           /* the container is the pod's pid-namespace holder: no exec, reap, wait */
  struct spec_pin *pins;
  size_t npins;
  struct spec_sysctl *sysctls;
  size_t nsysctls;
  struct spec_idmap *uid_maps; /* MODE_PIN with a user pin: the new user namespace's maps */
  size_t nuid_maps;
  struct spec_idmap *gid_maps;
  size_t ngid_maps;
  /* The container joins a user namespace (a "user" join): its root's ids on the host, the
     owner of what the agent-side setup creates in the container's idmapped root. */
  int has_userns_root;
  unsigned int userns_root_uid, userns_root_gid;
  char *id;
  char *rootfs;        /* NULL: run in the host's root (no pivot_root) */
  int rootfs_readonly;
  char **argv;
  size_t argc;
  char **env;
  size_t envc;
  char *cwd;
  char *hostname;
  unsigned int uid, gid;
  unsigned int *groups;
  size_t ngroups;
  int clone_flags;     /* CLONE_NEW* the container gets */
  struct spec_join *joins;
  size_t njoins;
  char **cgroups;      /* cgroup directories whose cgroup.procs get the container */
  size_t ncgroups;
  struct spec_bind *binds;
  size_t nbinds;
  char **masked;
  size_t nmasked;
  char **readonly_paths;
  size_t nreadonly;
  struct spec_rlimit *rlimits;
  size_t nrlimits;
  int caps_set;        /* capabilities given: keep exactly caps[] */
  unsigned long long caps; /* bit mask of CAP_* */
  int no_new_privs;
  int oom_score_adj;
  int has_oom_score_adj;
  int seccomp;         /* a filter is given */
  unsigned int seccomp_default;
  struct spec_seccomp_rule *seccomp_rules;
  size_t nseccomp_rules;
  int tty;
  int stdin_open;      /* the container's stdin is a pipe (or its terminal) attach clients feed */
  int stdin_once;      /* close it when the first attached client's stdin ends */
  char *attach_name;   /* unix socket path attach clients connect to; NULL: none */
  char *log_path;      /* CRI log file; NULL: discard output */
  char *exit_path;     /* where the exit status is written */
  char *pid_path;      /* where the container's pid is written */
  struct spec_cgroupfs *cgroupfs;
  size_t ncgroupfs;
  int cgroupfs_writable;
  char *dev_mode;      /* "tmpfs" (default) or "host" (bind the host's /dev, privileged) */
};

/* Parses the spec at path; on error writes a message to err and returns -1. */
int spec_load(const char *path, struct spec *spec, char *err, size_t errlen);

#endif

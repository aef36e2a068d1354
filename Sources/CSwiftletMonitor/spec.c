#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "spec.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

static void fail(char *err, size_t errlen, const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(err, errlen, format, args);
  va_end(args);
}

/* Unescapes a field in place: \t, \n, \\. */
static void unescape(char *field) {
  char *out = field;
  for (char *in = field; *in; in++) {
    if (*in == '\\' && in[1]) {
      in++;
      *out++ = *in == 't' ? '\t' : *in == 'n' ? '\n' : *in;
    } else {
      *out++ = *in;
    }
  }
  *out = '\0';
}

#define APPEND(array, count, value)                                        \
  do {                                                                     \
    void *grown = realloc((array), sizeof(*(array)) * ((count) + 1));      \
    if (grown == NULL) {                                                   \
      fail(err, errlen, "out of memory");                                  \
      return -1;                                                           \
    }                                                                      \
    (array) = grown;                                                       \
    (array)[(count)++] = (value);                                          \
  } while (0)

static int namespace_flag(const char *name) {
  if (strcmp(name, "mount") == 0) return CLONE_NEWNS;
  if (strcmp(name, "pid") == 0) return CLONE_NEWPID;
  if (strcmp(name, "uts") == 0) return CLONE_NEWUTS;
  if (strcmp(name, "ipc") == 0) return CLONE_NEWIPC;
  if (strcmp(name, "net") == 0) return CLONE_NEWNET;
  if (strcmp(name, "cgroup") == 0) return CLONE_NEWCGROUP;
  if (strcmp(name, "user") == 0) return CLONE_NEWUSER;
  return 0;
}

static int rlimit_resource(const char *name) {
  static const struct { const char *name; int resource; } names[] = {
    {"AS", RLIMIT_AS}, {"CORE", RLIMIT_CORE}, {"CPU", RLIMIT_CPU}, {"DATA", RLIMIT_DATA},
    {"FSIZE", RLIMIT_FSIZE}, {"LOCKS", RLIMIT_LOCKS}, {"MEMLOCK", RLIMIT_MEMLOCK},
    {"MSGQUEUE", RLIMIT_MSGQUEUE}, {"NICE", RLIMIT_NICE}, {"NOFILE", RLIMIT_NOFILE},
    {"NPROC", RLIMIT_NPROC}, {"RSS", RLIMIT_RSS}, {"RTPRIO", RLIMIT_RTPRIO},
    {"RTTIME", RLIMIT_RTTIME}, {"SIGPENDING", RLIMIT_SIGPENDING}, {"STACK", RLIMIT_STACK},
  };
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (strcmp(names[i].name, name) == 0) return names[i].resource;
  }
  return -1;
}

static int parse_limit(const char *text, rlim_t *value) {
  if (strcmp(text, "unlimited") == 0) {
    *value = RLIM_INFINITY;
    return 0;
  }
  char *end;
  errno = 0;
  unsigned long long parsed = strtoull(text, &end, 10);
  if (errno || *end || end == text) return -1;
  *value = (rlim_t)parsed;
  return 0;
}

static int seccomp_action(const char *text, unsigned int *action) {
  if (strcmp(text, "allow") == 0) *action = SCMP_ACT_ALLOW;
  else if (strcmp(text, "kill") == 0 || strcmp(text, "kill_thread") == 0) *action = SCMP_ACT_KILL;
  else if (strcmp(text, "kill_process") == 0) *action = SCMP_ACT_KILL_PROCESS;
  else if (strcmp(text, "trap") == 0) *action = SCMP_ACT_TRAP;
  else if (strcmp(text, "log") == 0) *action = SCMP_ACT_LOG;
  else if (strncmp(text, "errno:", 6) == 0) *action = SCMP_ACT_ERRNO((unsigned int)atoi(text + 6));
  else if (strncmp(text, "trace:", 6) == 0) *action = SCMP_ACT_TRACE((unsigned int)atoi(text + 6));
  else return -1;
  return 0;
}

static int seccomp_op(const char *text) {
  static const struct { const char *name; int op; } ops[] = {
    {"ne", SCMP_CMP_NE}, {"lt", SCMP_CMP_LT}, {"le", SCMP_CMP_LE}, {"eq", SCMP_CMP_EQ},
    {"ge", SCMP_CMP_GE}, {"gt", SCMP_CMP_GT}, {"masked_eq", SCMP_CMP_MASKED_EQ},
  };
  for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
    if (strcmp(ops[i].name, text) == 0) return ops[i].op;
  }
  return -1;
}

static int parse_line(char *line, struct spec *spec, char *err, size_t errlen) {
  char *fields[SPEC_MAX_FIELDS + 24];
  size_t n = 0;
  if (line[0] == '\0' || line[0] == '#') return 0;
  /* Split on every tab: empty fields (an empty argument) are kept. */
  char *field = line;
  while (n < sizeof(fields) / sizeof(fields[0])) {
    char *tab = strchr(field, '\t');
    if (tab) *tab = '\0';
    unescape(field);
    fields[n++] = field;
    if (!tab) break;
    field = tab + 1;
  }
  const char *key = fields[0];
#define NEED(count)                                                              \
  if (n != (count) + 1) {                                                        \
    fail(err, errlen, "directive %s takes %d field(s), got %zu", key, (count), n - 1); \
    return -1;                                                                   \
  }
  if (strcmp(key, "id") == 0) { NEED(1); spec->id = strdup(fields[1]); }
  else if (strcmp(key, "rootfs") == 0) { NEED(1); spec->rootfs = strdup(fields[1]); }
  else if (strcmp(key, "rootfs_readonly") == 0) { NEED(1); spec->rootfs_readonly = atoi(fields[1]); }
  else if (strcmp(key, "arg") == 0) { NEED(1); APPEND(spec->argv, spec->argc, strdup(fields[1])); }
  else if (strcmp(key, "env") == 0) { NEED(1); APPEND(spec->env, spec->envc, strdup(fields[1])); }
  else if (strcmp(key, "cwd") == 0) { NEED(1); spec->cwd = strdup(fields[1]); }
  else if (strcmp(key, "hostname") == 0) { NEED(1); spec->hostname = strdup(fields[1]); }
  else if (strcmp(key, "user") == 0) {
    NEED(2);
    spec->uid = (unsigned int)strtoul(fields[1], NULL, 10);
    spec->gid = (unsigned int)strtoul(fields[2], NULL, 10);
  } else if (strcmp(key, "group") == 0) {
    NEED(1);
    APPEND(spec->groups, spec->ngroups, (unsigned int)strtoul(fields[1], NULL, 10));
  } else if (strcmp(key, "namespace") == 0) {
    NEED(1);
    int flag = namespace_flag(fields[1]);
    if (!flag) { fail(err, errlen, "unknown namespace %s", fields[1]); return -1; }
    spec->clone_flags |= flag;
  } else if (strcmp(key, "join") == 0) {
    NEED(2);
    int flag = namespace_flag(fields[1]);
    if (!flag) { fail(err, errlen, "unknown namespace %s", fields[1]); return -1; }
    struct spec_join join = {flag, strdup(fields[2])};
    APPEND(spec->joins, spec->njoins, join);
  } else if (strcmp(key, "cgroup") == 0) { NEED(1); APPEND(spec->cgroups, spec->ncgroups, strdup(fields[1])); }
  else if (strcmp(key, "bind") == 0) {
    /* bind SOURCE TARGET MODE PROPAGATION [idmap] */
    if (n == 6) {
      if (strcmp(fields[5], "idmap") != 0) { fail(err, errlen, "bind option %s is not idmap", fields[5]); return -1; }
    } else {
      NEED(4);
    }
    struct spec_bind bind = {strdup(fields[1]), strdup(fields[2]), 0, 0, MS_PRIVATE | MS_REC, n == 6};
    if (strcmp(fields[3], "ro") == 0) bind.readonly = 1;
    else if (strcmp(fields[3], "rro") == 0) bind.readonly = bind.recursive_readonly = 1;
    else if (strcmp(fields[3], "rw") != 0) { fail(err, errlen, "bind mode %s is not ro, rro or rw", fields[3]); return -1; }
    if (strcmp(fields[4], "rprivate") == 0 || strcmp(fields[4], "private") == 0) bind.propagation = MS_PRIVATE | MS_REC;
    else if (strcmp(fields[4], "rslave") == 0) bind.propagation = MS_SLAVE | MS_REC;
    else if (strcmp(fields[4], "rshared") == 0) bind.propagation = MS_SHARED | MS_REC;
    else { fail(err, errlen, "bind propagation %s is not rprivate, rslave or rshared", fields[4]); return -1; }
    APPEND(spec->binds, spec->nbinds, bind);
  } else if (strcmp(key, "mask") == 0) { NEED(1); APPEND(spec->masked, spec->nmasked, strdup(fields[1])); }
  else if (strcmp(key, "readonly") == 0) { NEED(1); APPEND(spec->readonly_paths, spec->nreadonly, strdup(fields[1])); }
  else if (strcmp(key, "rlimit") == 0) {
    NEED(3);
    struct spec_rlimit limit;
    limit.resource = rlimit_resource(fields[1]);
    if (limit.resource < 0 || parse_limit(fields[2], &limit.limit.rlim_cur) || parse_limit(fields[3], &limit.limit.rlim_max)) {
      fail(err, errlen, "bad rlimit %s %s %s", fields[1], fields[2], fields[3]);
      return -1;
    }
    APPEND(spec->rlimits, spec->nrlimits, limit);
  } else if (strcmp(key, "caps") == 0) {
    NEED(1);
    spec->caps_set = 1;
    spec->caps = strtoull(fields[1], NULL, 16);
  } else if (strcmp(key, "no_new_privs") == 0) { NEED(1); spec->no_new_privs = atoi(fields[1]); }
  else if (strcmp(key, "oom_score_adj") == 0) {
    NEED(1);
    spec->has_oom_score_adj = 1;
    spec->oom_score_adj = atoi(fields[1]);
  } else if (strcmp(key, "seccomp_default") == 0) {
    NEED(1);
    spec->seccomp = 1;
    if (seccomp_action(fields[1], &spec->seccomp_default)) { fail(err, errlen, "bad seccomp action %s", fields[1]); return -1; }
  } else if (strcmp(key, "seccomp") == 0) {
    if (n < 3 || (n - 3) % 4 != 0 || (n - 3) / 4 > 6) { fail(err, errlen, "seccomp rule: action syscall [index op value value2]..."); return -1; }
    struct spec_seccomp_rule rule;
    memset(&rule, 0, sizeof(rule));
    if (seccomp_action(fields[1], &rule.action)) { fail(err, errlen, "bad seccomp action %s", fields[1]); return -1; }
    rule.syscall = strdup(fields[2]);
    for (size_t i = 3; i < n; i += 4) {
      size_t a = rule.nargs++;
      rule.arg_index[a] = (unsigned int)strtoul(fields[i], NULL, 10);
      rule.arg_op[a] = seccomp_op(fields[i + 1]);
      if (rule.arg_op[a] < 0) { fail(err, errlen, "bad seccomp operator %s", fields[i + 1]); return -1; }
      rule.arg_value[a] = strtoull(fields[i + 2], NULL, 10);
      rule.arg_value2[a] = strtoull(fields[i + 3], NULL, 10);
    }
    APPEND(spec->seccomp_rules, spec->nseccomp_rules, rule);
  } else if (strcmp(key, "tty") == 0) { NEED(1); spec->tty = atoi(fields[1]); }
  else if (strcmp(key, "log") == 0) { NEED(1); spec->log_path = strdup(fields[1]); }
  else if (strcmp(key, "exit") == 0) { NEED(1); spec->exit_path = strdup(fields[1]); }
  else if (strcmp(key, "pid") == 0) { NEED(1); spec->pid_path = strdup(fields[1]); }
  else if (strcmp(key, "dev") == 0) { NEED(1); spec->dev_mode = strdup(fields[1]); }
  else if (strcmp(key, "cgroupfs") == 0) {
    NEED(2);
    if (strchr(fields[2], '/') != NULL || strcmp(fields[2], "..") == 0) { fail(err, errlen, "cgroupfs name %s is not a plain name", fields[2]); return -1; }
    struct spec_cgroupfs entry = {strdup(fields[1]), strdup(fields[2]), NULL};
    APPEND(spec->cgroupfs, spec->ncgroupfs, entry);
  } else if (strcmp(key, "cgroupfs_link") == 0) {
    NEED(2);
    if (strchr(fields[1], '/') != NULL || strchr(fields[2], '/') != NULL) { fail(err, errlen, "cgroupfs_link names must be plain"); return -1; }
    struct spec_cgroupfs entry = {NULL, strdup(fields[1]), strdup(fields[2])};
    APPEND(spec->cgroupfs, spec->ncgroupfs, entry);
  } else if (strcmp(key, "cgroupfs_writable") == 0) { NEED(1); spec->cgroupfs_writable = atoi(fields[1]); }
  else if (strcmp(key, "stdin") == 0) { NEED(1); spec->stdin_open = atoi(fields[1]); }
  else if (strcmp(key, "stdin_once") == 0) { NEED(1); spec->stdin_once = atoi(fields[1]); }
  else if (strcmp(key, "attach") == 0) {
    NEED(1);
    if (fields[1][0] != '/' || strlen(fields[1]) >= 108) { fail(err, errlen, "attach socket %s must be an absolute path under 108 bytes", fields[1]); return -1; }
    spec->attach_name = strdup(fields[1]);
  } else if (strcmp(key, "mode") == 0) {
    NEED(1);
    if (strcmp(fields[1], "container") == 0) spec->mode = MODE_CONTAINER;
    else if (strcmp(fields[1], "exec") == 0) spec->mode = MODE_EXEC;
    else if (strcmp(fields[1], "pin") == 0) spec->mode = MODE_PIN;
    else { fail(err, errlen, "mode %s is not container, exec or pin", fields[1]); return -1; }
  } else if (strcmp(key, "pause") == 0) { NEED(1); spec->pause = atoi(fields[1]); }
  else if (strcmp(key, "pin") == 0) {
    NEED(2);
    struct spec_pin pin = {namespace_flag(fields[1]), strdup(fields[1]), strdup(fields[2])};
    if (pin.nstype != CLONE_NEWNET && pin.nstype != CLONE_NEWIPC && pin.nstype != CLONE_NEWUTS && pin.nstype != CLONE_NEWUSER) {
      fail(err, errlen, "cannot pin a %s namespace (net, ipc, uts or user)", fields[1]);
      return -1;
    }
    APPEND(spec->pins, spec->npins, pin);
  } else if (strcmp(key, "idmap") == 0) {
    /* idmap uid|gid CONTAINER_ID HOST_ID LENGTH: a line of the pinned user namespace's map */
    NEED(4);
    struct spec_idmap map = {(unsigned int)strtoul(fields[2], NULL, 10), (unsigned int)strtoul(fields[3], NULL, 10),
                             (unsigned int)strtoul(fields[4], NULL, 10)};
    if (map.length == 0) { fail(err, errlen, "idmap length must not be 0"); return -1; }
    if (strcmp(fields[1], "uid") == 0) APPEND(spec->uid_maps, spec->nuid_maps, map);
    else if (strcmp(fields[1], "gid") == 0) APPEND(spec->gid_maps, spec->ngid_maps, map);
    else { fail(err, errlen, "idmap %s is not uid or gid", fields[1]); return -1; }
  } else if (strcmp(key, "userns_root") == 0) {
    NEED(2);
    spec->has_userns_root = 1;
    spec->userns_root_uid = (unsigned int)strtoul(fields[1], NULL, 10);
    spec->userns_root_gid = (unsigned int)strtoul(fields[2], NULL, 10);
  } else if (strcmp(key, "sysctl") == 0) {
    NEED(2);
    if (strstr(fields[1], "..") != NULL || fields[1][0] == '/' || fields[1][0] == '\0') {
      fail(err, errlen, "sysctl name %s is not valid", fields[1]);
      return -1;
    }
    struct spec_sysctl sysctl = {strdup(fields[1]), strdup(fields[2])};
    APPEND(spec->sysctls, spec->nsysctls, sysctl);
  } else {
    fail(err, errlen, "unknown directive %s", key);
    return -1;
  }
#undef NEED
  return 0;
}

int spec_load(const char *path, struct spec *spec, char *err, size_t errlen) {
  memset(spec, 0, sizeof(*spec));
  FILE *file = fopen(path, "re");
  if (file == NULL) {
    fail(err, errlen, "cannot open spec %s: %s", path, strerror(errno));
    return -1;
  }
  char *line = NULL;
  size_t capacity = 0;
  ssize_t length;
  int lineno = 0;
  int status = 0;
  while ((length = getline(&line, &capacity, file)) >= 0) {
    lineno++;
    if (length > 0 && line[length - 1] == '\n') line[length - 1] = '\0';
    char message[512];
    if (parse_line(line, spec, message, sizeof(message)) != 0) {
      fail(err, errlen, "spec %s line %d: %s", path, lineno, message);
      status = -1;
      break;
    }
  }
  free(line);
  fclose(file);
  if (status == 0 && spec->argc == 0 && spec->mode != MODE_PIN && !spec->pause) {
    fail(err, errlen, "spec %s: no command (arg)", path);
    status = -1;
  }
  if (status == 0 && spec->exit_path == NULL && spec->mode == MODE_CONTAINER) {
    fail(err, errlen, "spec %s: no exit file", path);
    status = -1;
  }
  if (status == 0) {
    char **argv = realloc(spec->argv, sizeof(char *) * (spec->argc + 1));
    char **env = realloc(spec->env, sizeof(char *) * (spec->envc + 1));
    if (argv == NULL || (env == NULL && spec->envc + 1 > 0)) return -1;
    spec->argv = argv;
    spec->argv[spec->argc] = NULL;
    spec->env = env;
    spec->env[spec->envc] = NULL;
  }
  return status;
}

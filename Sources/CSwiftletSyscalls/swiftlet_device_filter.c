/* The devices a cgroup v2 container may use: a BPF_PROG_TYPE_CGROUP_DEVICE program (cgroup v2
   has no devices controller; this is what runc and crun attach instead of devices.allow). */
#define _GNU_SOURCE 1
#include "swiftlet_syscalls.h"

#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct bpf_insn insn(unsigned char code, unsigned char dst, unsigned char src, short off, int imm) {
  struct bpf_insn value;
  memset(&value, 0, sizeof(value));
  value.code = code;
  value.dst_reg = dst & 0xf;
  value.src_reg = src & 0xf;
  value.off = off;
  value.imm = imm;
  return value;
}

/* Registers: r2 the device type, r3 the access asked for, r4 major, r5 minor, r1 scratch
   once they are loaded (r1 holds the context until then). */
enum { R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5 };

int swl_attach_device_filter(int cgroup_fd, const struct swl_device_rule *rules, size_t count, char *message, size_t message_length) {
  if (message_length > 0) message[0] = '\0';
  /* 4 loads + 2 ALU; per rule at most 8 (type 1, access 3, major 1, minor 1, allow 2); 2 for
     the final deny. */
  enum { PER_RULE = 8 };
  size_t capacity = 6 + count * PER_RULE + 2;
  struct bpf_insn *program = calloc(capacity, sizeof(struct bpf_insn));
  if (program == NULL) {
    errno = ENOMEM;
    return -1;
  }
  size_t n = 0;
  /* struct bpf_cgroup_dev_ctx { __u32 access_type; __u32 major; __u32 minor; }:
     access_type is (access << 16) | type. */
  program[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, R2, R1, 0, 0);
  program[n++] = insn(BPF_ALU | BPF_AND | BPF_K, R2, 0, 0, 0xffff);
  program[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, R3, R1, 0, 0);
  program[n++] = insn(BPF_ALU | BPF_RSH | BPF_K, R3, 0, 0, 16);
  program[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, R4, R1, 4, 0);
  program[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, R5, R1, 8, 0);
  for (size_t i = 0; i < count; i++) {
    const struct swl_device_rule *rule = &rules[i];
    /* The rule's block: every check jumps past the block when it fails; the block ends by
       allowing. Built first, then the jumps are pointed at its end. */
    struct bpf_insn block[PER_RULE];
    size_t m = 0;
    int jumps[PER_RULE];
    size_t njumps = 0;
    if (rule->type == 'b' || rule->type == 'c') {
      jumps[njumps++] = (int)m;
      block[m++] = insn(BPF_JMP | BPF_JNE | BPF_K, R2, 0, 0, rule->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
    }
    unsigned int access = rule->access & (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE);
    if (access != (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)) {
      /* What is asked must be within what the rule gives: (asked & given) == asked. */
      block[m++] = insn(BPF_ALU | BPF_MOV | BPF_X, R1, R3, 0, 0);
      block[m++] = insn(BPF_ALU | BPF_AND | BPF_K, R1, 0, 0, (int)access);
      jumps[njumps++] = (int)m;
      block[m++] = insn(BPF_JMP | BPF_JNE | BPF_X, R1, R3, 0, 0);
    }
    if (rule->major >= 0) {
      jumps[njumps++] = (int)m;
      block[m++] = insn(BPF_JMP | BPF_JNE | BPF_K, R4, 0, 0, (int)rule->major);
    }
    if (rule->minor >= 0) {
      jumps[njumps++] = (int)m;
      block[m++] = insn(BPF_JMP | BPF_JNE | BPF_K, R5, 0, 0, (int)rule->minor);
    }
    block[m++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, 1);
    block[m++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    for (size_t j = 0; j < njumps; j++) block[jumps[j]].off = (short)(m - (size_t)jumps[j] - 1);
    memcpy(program + n, block, m * sizeof(struct bpf_insn));
    n += m;
  }
  program[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, 0);
  program[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);

  char log[4096];
  log[0] = '\0';
  union bpf_attr load;
  memset(&load, 0, sizeof(load));
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = (unsigned long long)(uintptr_t)program;
  load.insn_cnt = (unsigned int)n;
  load.license = (unsigned long long)(uintptr_t)"Apache";
  int prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof(load));
  int saved = errno;
  if (prog < 0 && saved != EPERM) {
    /* Once more with the verifier's log, for the message (a log that does not fit would
       itself fail the load with ENOSPC, so it is not asked for the first time). */
    load.log_buf = (unsigned long long)(uintptr_t)log;
    load.log_size = sizeof(log);
    load.log_level = 1;
    int again = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof(load));
    if (again >= 0) close(again);
  }
  free(program);
  if (prog < 0) {
    snprintf(message, message_length, "load the device filter: %s%s%.300s", strerror(saved), log[0] ? ": " : "", log);
    errno = saved;
    return -1;
  }
  union bpf_attr attach;
  memset(&attach, 0, sizeof(attach));
  attach.target_fd = (unsigned int)cgroup_fd;
  attach.attach_bpf_fd = (unsigned int)prog;
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  int result = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof(attach));
  saved = errno;
  close(prog); /* the attachment keeps the program; it goes with the cgroup */
  if (result != 0) {
    snprintf(message, message_length, "attach the device filter: %s", strerror(saved));
    errno = saved;
    return -1;
  }
  return 0;
}

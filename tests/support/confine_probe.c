/* A probe for tests/confine.rs: makes the syscalls busybox cannot make and prints one line
 * per check, `NAME=RESULT`, where RESULT is OK, an errno name (EPERM, ENOSYS, EACCES, …) or
 * SIGNAL<n> when a forked child was killed. Built by the test with `cc`. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __NR_mseal
#define __NR_mseal 462
#endif

/* glibc's name for errno `e` ("EPERM"), or "E<number>" for one it does not know. */
static const char *errname(int e) {
    const char *name = strerrorname_np(e);
    static char buf[16];
    if (name) return name;
    snprintf(buf, sizeof buf, "E%d", e);
    return buf;
}

static void report(const char *name, long rc) {
    if (rc < 0) printf("%s=%s\n", name, errname(errno));
    else printf("%s=OK\n", name);
}

/* Runs fn in a forked child and reports how the child ended: its exit code is an errno
 * (0 = OK), or the signal that killed it. */
static void in_child(const char *name, int (*fn)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(fn());
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) printf("%s=SIGNAL%d\n", name, WTERMSIG(status));
    else if (WEXITSTATUS(status) == 0) printf("%s=OK\n", name);
    else printf("%s=%s\n", name, errname(WEXITSTATUS(status)));
}

static int do_ptrace(void) { return ptrace(PTRACE_TRACEME, 0, 0, 0) < 0 ? errno : 0; }

static int do_x32(void) {
    long rc = syscall(0x40000000 | 39 /* x32 getpid */);
    return rc < 0 ? errno : 0;
}

static int do_i386(void) {
    long rc;
    __asm__ volatile("int $0x80" : "=a"(rc) : "a"(20 /* i386 getpid */) : "memory");
    return rc < 0 ? (int)-rc : 0;
}

static int do_clone_newuser(void) {
    long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) return errno;
    if (pid == 0) _exit(0);
    waitpid(pid, 0, 0);
    return 0;
}

/* struct clone_args, version 0 (glibc 2.36 headers do not declare it). */
struct probe_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static int do_clone3(void) {
    struct probe_clone_args args;
    memset(&args, 0, sizeof args);
    args.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0) return errno;
    if (pid == 0) _exit(0);
    waitpid(pid, 0, 0);
    return 0;
}

static int do_fork(void) {
    pid_t pid = fork();
    if (pid < 0) return errno;
    if (pid == 0) _exit(0);
    waitpid(pid, 0, 0);
    return 0;
}

static void print_status(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) { report("status", -1); return; }
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs", 10) || !strncmp(line, "Seccomp", 7)) {
            char *tab = strchr(line, ':');
            if (!tab) continue;
            *tab = 0;
            char *value = tab + 1;
            while (*value == '\t' || *value == ' ') value++;
            value[strcspn(value, "\n")] = 0;
            printf("%s=%s\n", line, value);
        }
    }
    fclose(f);
}

static long tcp(const char *how, int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    long rc = !strcmp(how, "bind") ? bind(fd, (void *)&a, sizeof a) : connect(fd, (void *)&a, sizeof a);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static long abstract_connect(const char *name) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    memcpy(a.sun_path + 1, name, len);
    long rc = connect(fd, (void *)&a, offsetof(struct sockaddr_un, sun_path) + 1 + len);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *c = argv[i];
        const char *arg = strchr(c, ':') ? strchr(c, ':') + 1 : "";
        if (!strcmp(c, "status")) print_status();
        else if (!strcmp(c, "euid")) printf("euid=%d\n", (int)geteuid());
        else if (!strcmp(c, "keyctl")) report(c, syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 1));
        else if (!strcmp(c, "add_key")) report(c, syscall(SYS_add_key, "user", "rsafe-probe", "x", 1, -2 /* process keyring */));
        else if (!strcmp(c, "bpf")) {
            union bpf_attr attr;
            memset(&attr, 0, sizeof attr);
            attr.map_type = BPF_MAP_TYPE_ARRAY;
            attr.key_size = 4;
            attr.value_size = 4;
            attr.max_entries = 1;
            report(c, syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
        }
        else if (!strcmp(c, "ptrace")) in_child(c, do_ptrace);
        else if (!strcmp(c, "userfaultfd")) report(c, syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */));
        else if (!strcmp(c, "io_uring")) {
            struct io_uring_params p;
            memset(&p, 0, sizeof p);
            report(c, syscall(SYS_io_uring_setup, 1, &p));
        }
        else if (!strcmp(c, "unshare_user")) report(c, unshare(CLONE_NEWUSER));
        else if (!strcmp(c, "unshare_files")) report(c, unshare(CLONE_FILES));
        else if (!strcmp(c, "clone_newuser")) in_child(c, do_clone_newuser);
        else if (!strcmp(c, "clone3")) in_child(c, do_clone3);
        else if (!strcmp(c, "fork")) in_child(c, do_fork);
        else if (!strcmp(c, "mseal")) report(c, syscall(__NR_mseal, 0, 0, 0));
        else if (!strcmp(c, "syslog")) report(c, syscall(SYS_syslog, 10 /* SIZE_BUFFER */, 0, 0));
        else if (!strcmp(c, "tiocsti")) { char ch = 'x'; report(c, ioctl(0, TIOCSTI, &ch)); }
        else if (!strcmp(c, "tiocsti_high")) { char ch = 'x'; report(c, syscall(SYS_ioctl, 0, (1UL << 32) | TIOCSTI, &ch)); }
        else if (!strcmp(c, "packet_socket")) report(c, socket(AF_PACKET, SOCK_RAW, 0));
        else if (!strcmp(c, "raw_socket")) report(c, socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
        else if (!strcmp(c, "tcp_socket")) report(c, socket(AF_INET, SOCK_STREAM, 0));
        /* MS_NOUSER is refused with EINVAL before any capability or LSM check: EINVAL means
         * the call got past seccomp, EPERM that the filter stopped it. Mounts nothing. */
        else if (!strcmp(c, "mount_nouser")) report(c, mount("none", "/", "tmpfs", MS_NOUSER, NULL));
        else if (!strcmp(c, "personality")) {
            long old = personality(0xffffffff);
            long rc = personality(READ_IMPLIES_EXEC);
            report(c, rc);
            if (rc >= 0) personality(old);
        }
        else if (!strcmp(c, "x32")) in_child(c, do_x32);
        else if (!strcmp(c, "i386")) in_child(c, do_i386);
        else if (!strncmp(c, "bind:", 5)) report(c, tcp("bind", atoi(arg)));
        else if (!strncmp(c, "connect:", 8)) report(c, tcp("connect", atoi(arg)));
        else if (!strncmp(c, "kill:", 5)) report(c, kill(atoi(arg), 0));
        else if (!strncmp(c, "abstract:", 9)) report(c, abstract_connect(arg));
        else if (!strncmp(c, "write:", 6)) {
            int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            report(c, fd < 0 ? -1 : write(fd, "x", 1));
            if (fd >= 0) close(fd);
        }
        else if (!strncmp(c, "read:", 5)) {
            int fd = open(arg, O_RDONLY | O_CLOEXEC);
            report(c, fd);
            if (fd >= 0) close(fd);
        }
        else { fprintf(stderr, "unknown check %s\n", c); return 2; }
    }
    return 0;
}

/* A hostile workload for tests/escape.rs: run inside `rsafe run`, it tries each known way out of
 * a container (or to see the host through it) and prints one line per vector:
 *
 *     name=blocked:<why>     the attempt failed; <why> is the errno (or what was seen instead)
 *     name=OPEN:<detail>     the attempt worked: the sandbox has a hole
 *     name=n/a:<why>         the vector cannot apply in this run
 *
 * and `done` last, so a crash half-way is visible. With arguments, only the named vectors run
 * (the test's control run on the host). Linked statically so it runs in a busybox root.
 *
 * Environment: ESCAPE_MARKER (a host-only file the double-chroot looks for), ESCAPE_TCP_PORT
 * (a host 127.0.0.1 listener), ESCAPE_ABSTRACT (a host abstract UNIX socket name),
 * ESCAPE_HOST_PATHS (':'-separated host paths that must not show in mountinfo). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/if_ether.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif

/* glibc's name for errno `e` ("EPERM"), or "E<number>" for one it does not know. */
static const char *errname(int e) {
    const char *name = strerrorname_np(e);
    static char buf[16];
    if (name) return name;
    snprintf(buf, sizeof buf, "E%d", e);
    return buf;
}

/* Outcomes, encoded in a forked child's exit status: 0 = OPEN, 1..255 = blocked with errno. */
static void blocked(const char *name, const char *why) { printf("%s=blocked:%s\n", name, why); }
static void open_(const char *name, const char *what) { printf("%s=OPEN:%s\n", name, what); }
static void na(const char *name, const char *why) { printf("%s=n/a:%s\n", name, why); }

/* Any failure of the call blocks the vector. */
static void any_error(const char *name, long rc) {
    if (rc < 0) blocked(name, errname(errno));
    else open_(name, "succeeded");
}

/* For calls made with deliberately harmless, invalid arguments: only a permission denial (or
 * a filtered syscall) counts; any other errno means the kernel checked the caller's
 * privileges, let it through and only then rejected the arguments. */
static void denied(const char *name, long rc) {
    if (rc >= 0) open_(name, "succeeded");
    else if (errno == EPERM || errno == EACCES || errno == ENOSYS) blocked(name, errname(errno));
    else open_(name, errname(errno)); /* past the permission check */
}

/* Runs fn in a forked child (vectors that would change the probe's own state when they work);
 * fn returns 0 for "worked" or the errno that stopped it. */
static void in_child(const char *name, int (*fn)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) { blocked(name, "fork failed"); return; }
    if (pid == 0) _exit(fn());
    int status = 0;
    waitpid(pid, &status, 0);
    char buf[32];
    if (WIFSIGNALED(status)) {
        snprintf(buf, sizeof buf, "SIGNAL%d", WTERMSIG(status));
        blocked(name, buf);
    } else if (WEXITSTATUS(status) == 0) open_(name, "succeeded");
    else blocked(name, errname(WEXITSTATUS(status)));
}

#define ERR(expr) ((expr) < 0 ? errno : 0)

/* ---- nested user namespaces ---- */

static int do_unshare_user(void) { return ERR(unshare(CLONE_NEWUSER)); }

static void v_userns_clone(const char *name) {
    fflush(stdout);
    long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid < 0) { blocked(name, errname(errno)); return; }
    waitpid((pid_t)pid, 0, 0);
    open_(name, "child in a new user namespace");
}

/* The usual second step: in a fresh user+mount namespace, mount a filesystem. */
static int do_userns_mount(void) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) return errno;
    return ERR(mount("none", "/", "tmpfs", 0, 0));
}

static int do_setns(void) {
    static const char *const kinds[] = {"user", "mnt", "net", "pid", "ipc", "uts", "cgroup"};
    int first = 0;
    for (unsigned i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/1/ns/%s", kinds[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        int e = fd < 0 ? errno : ERR(setns(fd, 0));
        if (e == 0) return 0;
        if (!first) first = e;
    }
    return first;
}

/* ---- the mount family ---- */

static const char *mount_target(void) {
    struct stat st;
    return stat("/mnt", &st) == 0 ? "/mnt" : "/";
}

static void v_mount_tmpfs(const char *name) { any_error(name, mount("none", mount_target(), "tmpfs", 0, 0)); }

static void v_umount_proc(const char *name) { any_error(name, umount2("/proc", MNT_DETACH)); }

static void v_open_tree(const char *name) {
    any_error(name, syscall(SYS_open_tree, AT_FDCWD, "/", OPEN_TREE_CLONE));
}

static void v_fsopen(const char *name) { any_error(name, syscall(SYS_fsopen, "tmpfs", 0)); }

static int do_pivot_root(void) {
    if (chdir("/") < 0) return errno;
    return ERR(syscall(SYS_pivot_root, ".", "."));
}

/* ---- kernel interfaces ---- */

static void v_keyctl(const char *name) {
    any_error(name, syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "rsafe-escape"));
}

static void v_add_key(const char *name) {
    any_error(name, syscall(SYS_add_key, "user", "rsafe-escape", "x", 1, KEY_SPEC_PROCESS_KEYRING));
}

static void v_bpf(const char *name) {
    struct bpf_insn prog[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT},
    };
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insn_cnt = 2;
    attr.insns = (uint64_t)(uintptr_t)prog;
    attr.license = (uint64_t)(uintptr_t) "GPL";
    any_error(name, syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr));
}

static void v_perf_event_open(const char *name) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.disabled = 1;
    any_error(name, syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
}

static void v_userfaultfd(const char *name) { any_error(name, syscall(SYS_userfaultfd, O_CLOEXEC)); }

static void v_io_uring(const char *name) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    any_error(name, syscall(SYS_io_uring_setup, 1, &p));
}

static void v_init_module(const char *name) { denied(name, syscall(SYS_init_module, 0, 0, "")); }
static void v_finit_module(const char *name) { denied(name, syscall(SYS_finit_module, -1, "", 0)); }
/* Invalid flags: rejected with EINVAL, but only after the CAP_SYS_BOOT check. */
static void v_kexec_load(const char *name) { denied(name, syscall(SYS_kexec_load, 0, 0, 0, 0xdead0000UL)); }
/* Wrong magic: EINVAL, but only after the CAP_SYS_BOOT check. */
static void v_reboot(const char *name) {
    denied(name, syscall(SYS_reboot, 0x1234, 0x5678, LINUX_REBOOT_CMD_CAD_OFF, 0));
}
static void v_swapon(const char *name) { denied(name, syscall(SYS_swapon, "/rsafe-escape-no-such-swap", 0)); }

static void v_syslog(const char *name) {
    static char buf[4096];
    any_error(name, klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, sizeof buf));
}

/* With no time and no zone the call changes nothing, yet the CAP_SYS_TIME check still runs. */
static void v_settimeofday(const char *name) { any_error(name, syscall(SYS_settimeofday, 0, 0)); }

static void v_clock_settime(const char *name) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    any_error(name, syscall(SYS_clock_settime, CLOCK_REALTIME, &now));
}

/* The "shocker" escape: a handle for inode 2 (the root directory of an ext4 filesystem),
 * opened relative to a directory on the same filesystem, bypasses every mount. */
static void v_open_by_handle_at(const char *name) {
    struct {
        struct file_handle fh;
        uint32_t ino_gen[2];
    } h;
    h.fh.handle_bytes = 8;
    h.fh.handle_type = 1; /* FILEID_INO32_GEN */
    h.ino_gen[0] = 2;
    h.ino_gen[1] = 0;
    int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    denied(name, syscall(SYS_open_by_handle_at, dir, &h.fh, O_RDONLY));
    close(dir);
}

static void v_name_to_handle_at(const char *name) {
    struct {
        struct file_handle fh;
        unsigned char bytes[128];
    } h;
    h.fh.handle_bytes = sizeof h.bytes;
    int mount_id;
    any_error(name, syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &h.fh, &mount_id, 0));
}

static void v_ptrace_attach(const char *name) {
    long rc = ptrace(PTRACE_ATTACH, 1, 0, 0);
    if (rc == 0) ptrace(PTRACE_DETACH, 1, 0, 0);
    any_error(name, rc);
}

static void v_process_vm_readv(const char *name) {
    static char probe_word[8] = "rsafe";
    char buf[8];
    struct iovec local = {buf, sizeof buf}, remote = {probe_word, sizeof probe_word};
    denied(name, syscall(SYS_process_vm_readv, 1, &local, 1, &remote, 1, 0));
}

/* ---- devices and raw network ---- */

static void v_mknod(const char *name) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/rsafe-escape-sda.%d", (int)getpid());
    if (access("/tmp", W_OK) != 0) snprintf(path, sizeof path, "rsafe-escape-sda.%d", (int)getpid());
    int rc = mknod(path, S_IFBLK | 0600, makedev(8, 0));
    int e = errno;
    if (rc == 0) unlink(path);
    errno = e;
    any_error(name, rc);
}

static void v_af_packet(const char *name) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    any_error(name, fd);
    if (fd >= 0) close(fd);
}

static void v_raw_icmp(const char *name) {
    int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    any_error(name, fd);
    if (fd >= 0) close(fd);
}

/* TIOCSTI pushes input into a terminal: on the caller's terminal it runs commands after the
 * container exits. Tried on stdin when it is a terminal, otherwise on a fresh pty. */
static void v_tiocsti(const char *name) {
    int fd = 0, master = -1;
    if (!isatty(0)) {
        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
            char why[48];
            snprintf(why, sizeof why, "no tty on stdin and no pty (%s)", errname(errno));
            na(name, why);
            if (master >= 0) close(master);
            return;
        }
        fd = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
            char why[48];
            snprintf(why, sizeof why, "pty slave: %s", errname(errno));
            na(name, why);
            close(master);
            return;
        }
    }
    char c = 'x';
    any_error(name, ioctl(fd, TIOCSTI, &c));
    if (master >= 0) { close(fd); close(master); }
}

/* ---- the filesystem ---- */

static void v_sysrq(const char *name) {
    int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
    if (fd < 0) { blocked(name, errname(errno)); return; }
    struct stat st;
    fstat(fd, &st);
    if (!S_ISREG(st.st_mode)) { blocked(name, "masked"); close(fd); return; }
    /* 'h' only prints the sysrq help to the kernel log. */
    long rc = write(fd, "h", 1);
    close(fd);
    any_error(name, rc);
}

/* Opened for writing only: never written, in case it is the host's. */
static void open_for_write(const char *name, const char *const *paths) {
    int first = 0;
    for (; *paths; paths++) {
        int fd = open(*paths, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            close(fd);
            open_(name, *paths);
            return;
        }
        /* A file that exists says more than one this kernel lacks. */
        if (!first || first == ENOENT) first = errno;
    }
    blocked(name, errname(first));
}

static void v_core_pattern(const char *name) {
    static const char *const paths[] = {"/proc/sys/kernel/core_pattern", 0};
    open_for_write(name, paths);
}

static void v_sys_write(const char *name) {
    static const char *const paths[] = {"/sys/kernel/uevent_helper", "/sys/kernel/mm/transparent_hugepage/enabled",
                                        "/sys/power/state", 0};
    open_for_write(name, paths);
}

static void v_kcore(const char *name) {
    int fd = open("/proc/kcore", O_RDONLY | O_CLOEXEC);
    if (fd < 0) { blocked(name, errname(errno)); return; }
    char buf[64];
    long n = read(fd, buf, sizeof buf);
    int e = errno;
    close(fd);
    if (n < 0) blocked(name, errname(e));
    else if (n == 0) blocked(name, "empty");
    else open_(name, "read kernel memory image");
}

static void v_proc1_exe_write(const char *name) {
    int fd = open("/proc/1/exe", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) close(fd);
    any_error(name, fd);
}

static int host_path(const char *s) {
    static const char *const needles[] = {"rsafe", "/work", "/root", "/home", 0};
    for (const char *const *n = needles; *n; n++)
        if (strstr(s, *n)) return 1;
    return 0;
}

static void v_proc1_exe_link(const char *name) {
    char target[4096];
    long n = readlink("/proc/1/exe", target, sizeof target - 1);
    if (n < 0) { blocked(name, errname(errno)); return; }
    target[n] = 0;
    char detail[4200];
    snprintf(detail, sizeof detail, "%s", target);
    if (host_path(target)) open_(name, detail);
    else blocked(name, detail);
}

static void v_mountinfo(const char *name) {
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) { blocked(name, errname(errno)); return; }
    const char *extra = getenv("ESCAPE_HOST_PATHS");
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        const char *hit = 0;
        static const char *const needles[] = {"/work", "/root", "/home", 0};
        for (const char *const *n = needles; *n && !hit; n++)
            if (strstr(line, *n)) hit = *n;
        if (!hit && extra) {
            char list[4096];
            snprintf(list, sizeof list, "%s", extra);
            for (char *p = strtok(list, ":"); p && !hit; p = strtok(0, ":"))
                if (*p && strstr(line, p)) hit = "a host path from ESCAPE_HOST_PATHS";
        }
        if (hit) {
            line[strcspn(line, "\n")] = 0;
            char detail[8300];
            snprintf(detail, sizeof detail, "%s in: %s", hit, line);
            open_(name, detail);
            fclose(f);
            return;
        }
    }
    fclose(f);
    blocked(name, "no host path");
}

static int do_double_chroot(void) {
    const char *marker = getenv("ESCAPE_MARKER");
    char dir[] = "/tmp/rsafe-escape-XXXXXX";
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof dir, "rsafe-escape-x");
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) return errno;
    }
    if (chroot(dir) < 0) return errno;
    for (int i = 0; i < 256; i++)
        if (chdir("..") < 0) break;
    if (chroot(".") < 0) return errno;
    /* Contained: the host-only marker is not visible from the new root. */
    int seen = access(marker, F_OK) == 0;
    /* Out (the control run on the host): the first root again, where the directory is. */
    rmdir(dir);
    return seen ? 0 : ENOENT;
}

static void v_double_chroot(const char *name) {
    if (!getenv("ESCAPE_MARKER")) { na(name, "no ESCAPE_MARKER given"); return; }
    in_child(name, do_double_chroot);
}

static void v_inherited_fds(const char *name) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) { open_(name, "cannot list /proc/self/fd"); return; }
    int own = dirfd(d);
    char extra[256] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd <= 2 || fd == own) continue;
        char link[64], target[128] = "?";
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        long n = readlink(link, target, sizeof target - 1);
        if (n >= 0) target[n] = 0;
        size_t len = strlen(extra);
        snprintf(extra + len, sizeof extra - len, "%s%d->%s", len ? "," : "", fd, target);
    }
    closedir(d);
    if (extra[0]) open_(name, extra);
    else blocked(name, "only 0,1,2");
}

static void v_cgroup_mount(const char *name) {
    any_error(name, mount("cgroup", mount_target(), "cgroup", 0, "memory"));
}

static void v_release_agent(const char *name) {
    DIR *d = opendir("/sys/fs/cgroup");
    if (!d) { blocked(name, errname(errno)); return; }
    struct dirent *e;
    int first = ENOENT;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "/sys/fs/cgroup/%s/release_agent", e->d_name);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            close(fd);
            closedir(d);
            open_(name, path);
            return;
        }
        if (first == ENOENT) first = errno;
    }
    closedir(d);
    blocked(name, errname(first));
}

/* ---- privilege ---- */

static void v_capset(const char *name) {
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) < 0) { blocked(name, errname(errno)); return; }
    data[0].effective |= 1u << CAP_SYS_ADMIN;
    data[0].permitted |= 1u << CAP_SYS_ADMIN;
    any_error(name, syscall(SYS_capset, &hdr, data));
}

static void v_ambient(const char *name) {
    any_error(name, prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN, 0, 0));
}

/* ---- the host's network ---- */

static void v_connect_tcp(const char *name) {
    const char *port = getenv("ESCAPE_TCP_PORT");
    if (!port) { na(name, "no ESCAPE_TCP_PORT given"); return; }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { blocked(name, errname(errno)); return; }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    any_error(name, connect(fd, (struct sockaddr *)&addr, sizeof addr));
    close(fd);
}

static void v_connect_abstract(const char *name) {
    const char *abstract = getenv("ESCAPE_ABSTRACT");
    if (!abstract) { na(name, "no ESCAPE_ABSTRACT given"); return; }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { blocked(name, errname(errno)); return; }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(abstract);
    if (len > sizeof addr.sun_path - 1) len = sizeof addr.sun_path - 1;
    memcpy(addr.sun_path + 1, abstract, len);
    any_error(name, connect(fd, (struct sockaddr *)&addr, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len)));
    close(fd);
}

/* ---- the table ---- */

static void v_unshare_user(const char *name) { in_child(name, do_unshare_user); }
static void v_userns_mount(const char *name) { in_child(name, do_userns_mount); }
static void v_setns(const char *name) { in_child(name, do_setns); }
static void v_pivot_root(const char *name) { in_child(name, do_pivot_root); }

static const struct {
    const char *name;
    void (*run)(const char *);
} vectors[] = {
    /* First, before the probe opens anything itself. */
    {"inherited_fds", v_inherited_fds},
    {"userns_unshare", v_unshare_user},
    {"userns_clone", v_userns_clone},
    {"userns_mount_tmpfs", v_userns_mount},
    {"setns_proc1", v_setns},
    {"mount_tmpfs", v_mount_tmpfs},
    {"umount_proc", v_umount_proc},
    {"open_tree", v_open_tree},
    {"fsopen_tmpfs", v_fsopen},
    {"pivot_root", v_pivot_root},
    {"keyctl_join_session", v_keyctl},
    {"add_key", v_add_key},
    {"bpf_prog_load", v_bpf},
    {"perf_event_open", v_perf_event_open},
    {"userfaultfd", v_userfaultfd},
    {"io_uring_setup", v_io_uring},
    {"init_module", v_init_module},
    {"finit_module", v_finit_module},
    {"kexec_load", v_kexec_load},
    {"reboot", v_reboot},
    {"swapon", v_swapon},
    {"syslog_read_all", v_syslog},
    {"settimeofday", v_settimeofday},
    {"clock_settime", v_clock_settime},
    {"name_to_handle_at", v_name_to_handle_at},
    {"open_by_handle_at", v_open_by_handle_at},
    {"ptrace_attach_pid1", v_ptrace_attach},
    {"process_vm_readv_pid1", v_process_vm_readv},
    {"mknod_block_device", v_mknod},
    {"socket_af_packet", v_af_packet},
    {"socket_raw_icmp", v_raw_icmp},
    {"tiocsti", v_tiocsti},
    {"write_sysrq_trigger", v_sysrq},
    {"write_core_pattern", v_core_pattern},
    {"write_sysfs", v_sys_write},
    {"read_kcore", v_kcore},
    {"write_proc1_exe", v_proc1_exe_write},
    {"readlink_proc1_exe", v_proc1_exe_link},
    {"mountinfo_host_paths", v_mountinfo},
    {"double_chroot", v_double_chroot},
    {"mount_cgroup_v1", v_cgroup_mount},
    {"cgroup_release_agent", v_release_agent},
    {"capset_sys_admin", v_capset},
    {"ambient_raise_sys_admin", v_ambient},
    {"connect_host_tcp", v_connect_tcp},
    {"connect_host_abstract_unix", v_connect_abstract},
};

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IOLBF, 0);
    for (size_t i = 0; i < sizeof vectors / sizeof *vectors; i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc && !wanted; a++) wanted = strcmp(argv[a], vectors[i].name) == 0;
        if (wanted) vectors[i].run(vectors[i].name);
        fflush(stdout);
    }
    puts("done");
    return 0;
}

/* A hostile workload for `rsafe run --learn` (tests/learn.rs): one thread keeps rewriting the
 * path another thread passes to open(), so the path rsafe reads from its memory after the
 * notification may not be the one the kernel then opens (TOCTOU). Then it tries what the
 * policy forbids (a user namespace) to show the learning run is not less confined.
 * Prints `opened N` and `unshare: <error>`; exits 1 if unshare was allowed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char path[32] = "/etc/passwd";
static volatile int stop;

static void *flip(void *arg) {
    (void)arg;
    while (!stop) {
        memcpy(path, "/root/x.txt", 12);
        memcpy(path, "/etc/passwd", 12);
    }
    return NULL;
}

int main(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, flip, NULL) != 0) return 2;
    int opened = 0;
    for (int i = 0; i < 2000; i++) {
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            opened++;
            close(fd);
        }
    }
    stop = 1;
    pthread_join(t, NULL);
    printf("opened %d\n", opened);
    if (unshare(CLONE_NEWUSER) == 0) {
        puts("unshare: allowed");
        return 1;
    }
    printf("unshare: %s\n", strerror(errno));
    return 0;
}

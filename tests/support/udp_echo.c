/* A UDP echo server for tests/network.rs (busybox's nc has no UDP): binds 0.0.0.0:PORT and
 * answers each datagram with "echo: " and the datagram, until killed. Built with `cc -static`. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: udp-echo PORT\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("udp-echo");
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    for (;;) {
        char in[1024], out[1100];
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(fd, in, sizeof in, 0, (struct sockaddr *)&from, &len);
        if (n < 0) continue;
        memcpy(out, "echo: ", 6);
        memcpy(out + 6, in, n);
        sendto(fd, out, n + 6, 0, (struct sockaddr *)&from, len);
    }
}

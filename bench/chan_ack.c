/*
 * bench/chan_ack.c — `chan_ack [--tcp] CMD ARGS...`: run CMD with a report channel and answer
 * every event "A <n>" at once, as the distributor does once Kafka acknowledged it (Kafka's own
 * latency is not included: it is the distributor's, shared by its workers).  Exits with CMD's
 * status.  Plain libc, so its own start costs little; time `chan_ack [--tcp] sh -c true` to
 * subtract it.  The protocol is the one in src/worker/report.h:
 *   default: the local channel, a SOCK_SEQPACKET socketpair on descriptor 3 (as the
 *            sequential/multiprocess distributor gives jobmon-worker with --report-fd 3);
 *   --tcp:   the network channel of Slurm jobs: it listens on 127.0.0.1 (ephemeral port), gives
 *            CMD JOBMON_REPORT_ADDR and JOBMON_REPORT_TOKEN, takes the token message first, and
 *            frames every message with a 4-byte big-endian length.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOKEN "0123456789abcdef0123456789abcdef"

static int wait_child(pid_t pid)
{
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

static int run_seqpacket(char **argv)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return 2;
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        if (dup2(sv[1], 3) != 3)
            _exit(127);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(sv[1]);
    char buf[1 << 17], ack[32];
    unsigned n = 0;
    for (;;) {
        ssize_t got = recv(sv[0], buf, sizeof(buf), 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break; /* the worker's end is closed: it has exited */
        int len = snprintf(ack, sizeof(ack), "A %u", ++n);
        (void)send(sv[0], ack, (size_t)len, MSG_NOSIGNAL);
    }
    return wait_child(pid);
}

/* Answer the whole messages in buf[0..*len) (the first one is the token), keep the rest. */
static void answer_frames(int fd, char *buf, size_t *len, unsigned *n, int *authed)
{
    size_t off = 0;
    while (*len - off >= 4) {
        uint32_t m;
        memcpy(&m, buf + off, 4);
        m = ntohl(m);
        if (*len - off - 4 < m)
            break;
        if (!*authed) {
            *authed = m == strlen(TOKEN) + 2 && memcmp(buf + off + 4, "T " TOKEN, m) == 0;
        } else {
            char ack[36];
            int l = snprintf(ack + 4, sizeof(ack) - 4, "A %u", ++*n);
            uint32_t be = htonl((uint32_t)l);
            memcpy(ack, &be, 4);
            (void)send(fd, ack, (size_t)l + 4, MSG_NOSIGNAL);
        }
        off += 4 + m;
    }
    memmove(buf, buf + off, *len - off);
    *len -= off;
}

static int run_tcp(char **argv)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0)
        return 2;
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        setenv("JOBMON_REPORT_ADDR", addr, 1);
        setenv("JOBMON_REPORT_TOKEN", TOKEN, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    /* the child's end: a pidfd (readable once it exits), so a CMD that never connects (sh -c
     * true) costs no timeout */
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0), cfd = -1, authed = 0;
    static char buf[1 << 20];
    size_t len = 0;
    unsigned n = 0;
    for (;;) {
        struct pollfd p[2] = {{.fd = cfd >= 0 ? cfd : lfd, .events = POLLIN},
                              {.fd = pfd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (cfd < 0 && (p[0].revents & POLLIN)) {
            cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            (void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            continue;
        }
        if (cfd >= 0 && (p[0].revents & (POLLIN | POLLHUP))) {
            ssize_t got = recv(cfd, buf + len, sizeof(buf) - len, 0);
            if (got <= 0)
                break; /* the worker's end is closed: it has exited */
            len += (size_t)got;
            answer_frames(cfd, buf, &len, &n, &authed);
            continue;
        }
        if (p[1].revents & POLLIN)
            break; /* exited without (more) messages */
    }
    return wait_child(pid);
}

int main(int argc, char **argv)
{
    int tcp = argc > 1 && strcmp(argv[1], "--tcp") == 0;
    if (argc < 2 + tcp) {
        fprintf(stderr, "usage: chan_ack [--tcp] CMD [ARGS...]\n");
        return 2;
    }
    return tcp ? run_tcp(argv + 2) : run_seqpacket(argv + 1);
}

/*
 * bench/chan_ack.c — `chan_ack CMD ARGS...`: run CMD with a local report channel on descriptor 3
 * (a SOCK_SEQPACKET socketpair, as the sequential/multiprocess distributor gives jobmon-worker
 * with --report-fd 3) and answer every datagram "A <n>" at once, as the distributor does once
 * Kafka acknowledged it (Kafka's own latency is not included: it is the distributor's, shared
 * by its workers).  Exits with CMD's status.  Plain libc, so its own start costs little; time
 * `chan_ack sh -c true` to subtract it.  The answer format is the one in src/worker/report.h.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int sv[2];
    if (argc < 2 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        fprintf(stderr, "usage: chan_ack CMD [ARGS...]\n");
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        if (dup2(sv[1], 3) != 3)
            _exit(127);
        execvp(argv[1], argv + 1);
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
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

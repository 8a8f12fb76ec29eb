/*
 * chan.c — report channel transports (chan.h): datagrams on a socketpair, length-prefixed
 * messages on a TCP connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jobmon/jmtime.h"
#include "worker/chan.h"

struct jm_chan_s {
    int fd;
    int stream;
    char *rbuf; /* stream: bytes received, not yet a whole message */
    size_t rlen, rcap;
};

jm_chan_t *jm_chan_new(int fd, int stream)
{
    jm_chan_t *c = jm_calloc(1, sizeof(*c));
    c->fd = fd;
    c->stream = stream;
    return c;
}

void jm_chan_free(jm_chan_t *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->rbuf);
    free(c);
}

int jm_chan_fd(const jm_chan_t *c)
{
    return c ? c->fd : -1;
}

int jm_chan_is_stream(const jm_chan_t *c)
{
    return c && c->stream;
}

/* Write all of buf to the stream, waiting for room until `deadline`.  0, or -1 with errno
 * (EAGAIN only when nothing was written). */
static int stream_write(int fd, const char *buf, size_t len, int64_t deadline)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = send(fd, buf + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN)
            return -1;
        int64_t left = deadline - jm_time_mono_ms();
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (left <= 0 || (poll(&pfd, 1, (int)left) <= 0 && errno != EINTR)) {
            errno = done ? EPIPE : EAGAIN;
            return -1;
        }
    }
    return 0;
}

int jm_chan_send(jm_chan_t *c, const void *buf, size_t len, int timeout_ms)
{
    if (!c->stream) {
        for (;;) {
            ssize_t w = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w == (ssize_t)len)
                return 0;
            if (w < 0 && errno == EINTR)
                continue;
            if (w >= 0)
                errno = EMSGSIZE;
            return -1;
        }
    }
    if (len == 0 || len > JM_CHAN_MAX_MSG) {
        errno = EMSGSIZE;
        return -1;
    }
    /* header and body in one send: one segment for a small message (TCP_NODELAY) */
    char *msg = jm_malloc(len + 4);
    uint32_t n = htonl((uint32_t)len);
    memcpy(msg, &n, 4);
    memcpy(msg + 4, buf, len);
    int rc = stream_write(c->fd, msg, len + 4, jm_time_mono_ms() + timeout_ms);
    free(msg);
    return rc;
}

static int dgram_recv(int fd, char **buf, size_t *len)
{
    for (;;) {
        /* MSG_TRUNC with MSG_PEEK: the datagram's real size */
        ssize_t n = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n == 0)
            errno = 0; /* EOF (an empty datagram is never sent) */
        if (n <= 0)
            return -1;
        *buf = jm_malloc((size_t)n + 1);
        ssize_t m = recv(fd, *buf, (size_t)n, MSG_DONTWAIT);
        if (m != n) {
            free(*buf);
            *buf = NULL;
            return -1;
        }
        (*buf)[n] = '\0';
        *len = (size_t)n;
        return 1;
    }
}

/* The whole message at the start of c->rbuf, taken out: 1, 0 (incomplete), -1 (bad length). */
static int stream_take(jm_chan_t *c, char **buf, size_t *len)
{
    if (c->rlen < 4)
        return 0;
    uint32_t n;
    memcpy(&n, c->rbuf, 4);
    n = ntohl(n);
    if (n == 0 || n > JM_CHAN_MAX_MSG) {
        errno = EPROTO;
        return -1;
    }
    if (c->rlen < 4 + (size_t)n)
        return 0;
    *buf = jm_malloc((size_t)n + 1);
    memcpy(*buf, c->rbuf + 4, n);
    (*buf)[n] = '\0';
    *len = n;
    c->rlen -= 4 + (size_t)n;
    memmove(c->rbuf, c->rbuf + 4 + n, c->rlen);
    return 1;
}

int jm_chan_recv(jm_chan_t *c, char **buf, size_t *len)
{
    if (c->fd < 0)
        return -1;
    if (!c->stream)
        return dgram_recv(c->fd, buf, len);
    for (;;) {
        int got = stream_take(c, buf, len);
        if (got != 0)
            return got;
        if (c->rcap - c->rlen < 4096) {
            c->rcap = c->rcap ? 2 * c->rcap : 8192;
            c->rbuf = jm_realloc(c->rbuf, c->rcap);
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n == 0)
            errno = 0; /* EOF */
        if (n <= 0)
            return -1;
        c->rlen += (size_t)n;
    }
}

void jm_chan_tune_tcp(int fd)
{
    int one = 1, idle = 60, intvl = 10, cnt = 3;
    unsigned user_timeout_ms = 30000;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms));
}

void jm_chan_split_addr(const char *spec, char **host, char **port)
{
    const char *colon = strchr(spec, ':'), *he = NULL, *p = NULL;
    if (spec[0] == '[' && (he = strchr(spec, ']')) != NULL) {
        p = he[1] == ':' ? he + 2 : NULL;
        spec++;
    } else if (colon && !strchr(colon + 1, ':')) { /* one colon: HOST:PORT */
        he = colon;
        p = colon + 1;
    } else {
        he = spec + strlen(spec);
    }
    *host = he > spec ? jm_strndup(spec, (size_t)(he - spec)) : NULL;
    *port = p && *p ? jm_strdup(p) : NULL;
}

/* Finish a non-blocking connect on fd within timeout_ms: 0, or -1 with errno. */
static int connect_wait(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int n;
    while ((n = poll(&pfd, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    if (n == 0)
        errno = ETIMEDOUT;
    if (n <= 0)
        return -1;
    int e = 0;
    socklen_t el = sizeof(e);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0)
        return -1;
    errno = e;
    return e ? -1 : 0;
}

int jm_chan_connect(const char *addr, int timeout_ms, jm_err_t *err)
{
    char *host = NULL, *port = NULL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int fd = -1, e;
    jm_chan_split_addr(addr, &host, &port);
    if (!host || !port) {
        jm_err_set(err, JM_ERR_INVALID, "report address '%s' is not host:port", addr);
        goto out;
    }
    hints.ai_flags = AI_NUMERICSERV;
    if ((e = getaddrinfo(host, port, &hints, &ai)) != 0) {
        jm_err_set(err, JM_ERR_UNAVAILABLE, "report address %s: %s", addr, gai_strerror(e));
        goto out;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || ((connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) ||
                   connect_wait(fd, timeout_ms) != 0)) {
        jm_err_set(err, JM_ERR_UNAVAILABLE, "report channel to %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
        goto out;
    }
    jm_chan_tune_tcp(fd);
out:
    if (ai)
        freeaddrinfo(ai);
    free(host);
    free(port);
    return fd;
}

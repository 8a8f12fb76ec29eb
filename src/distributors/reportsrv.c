/*
 * reportsrv.c — the distributor's TCP report channel (reportsrv.h).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "distributors/relay.h"
#include "distributors/reportsrv.h"
#include "jobmon/jmtime.h"
#include "jobmon/log.h"

typedef struct {
    jm_chan_t *chan; /* NULL once closed (swept from the list by the next poll) */
    uint32_t cid;    /* the high half of its events' tokens */
    uint32_t nrecv;  /* event messages received */
    int authed;      /* sent the right token */
    int broken;      /* an answer could not be sent: closed by the next sweep */
    int64_t since;   /* accepted at (monotonic ms) */
    char peer[64];
} conn_t;

struct jm_reportsrv_s {
    int lfd;
    char addr[300];
    char token[33];
    size_t max_conns;
    conn_t *conns;
    size_t n, cap;
    uint32_t next_cid;
    jm_relay_t *relay;
    jm_reportsrv_stats_t st;
};

/* ---- listening ---- */

/* Numeric "host:port" ("[host]:port" for IPv6) of a socket address. */
static void format_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t sz)
{
    char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "0";
    (void)getnameinfo(sa, len, host, sizeof(host), port, sizeof(port),
                      NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(out, sz, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* A listening socket on the first address of host:port that binds; -1 with err. */
static int listen_on(const char *host, const char *port, jm_err_t *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *ai = NULL;
    int e = getaddrinfo(host, port, &hints, &ai), fd = -1;
    if (e != 0) {
        jm_err_set(err, JM_ERR_UNAVAILABLE, "report channel: %s: %s", host ? host : "*",
                   gai_strerror(e));
        return -1;
    }
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd >= 0)
            (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (fd >= 0 && (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0)) {
            jm_err_set(err, JM_ERR_UNAVAILABLE, "report channel: listen on %s:%s: %s",
                       host ? host : "*", port, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

/* 1 when sa is the wildcard address (workers cannot connect to it from elsewhere). */
static int is_wildcard(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return 0;
}

/* 1 when ss is a loopback address (reachable from this host only). */
static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return 0;
}

/* Listen as `spec` says (see reportsrv.h) and set s->addr. */
static int open_listener(jm_reportsrv_t *s, const char *spec, jm_err_t *err)
{
    char name[256] = "", *host = NULL, *port = NULL;
    int auto_host = !*spec;
    jm_chan_split_addr(spec, &host, &port); /* no host: every address; no port: ephemeral */
    if (!port)
        port = jm_strdup("0");
    if (auto_host && gethostname(name, sizeof(name) - 1) == 0 && name[0])
        host = jm_strdup(name);
    s->lfd = listen_on(host, port, err);
    if (s->lfd < 0 && auto_host) {
        jm_log(JM_LOG_WARN, "reportsrv", "%s; listening on 127.0.0.1", err ? err->msg : "");
        s->lfd = listen_on("127.0.0.1", "0", err);
    }
    free(host);
    free(port);
    if (s->lfd < 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(s->lfd, (struct sockaddr *)&ss, &len) != 0)
        return jm_err_set(err, JM_ERR_IO, "report channel: getsockname: %s", strerror(errno)), -1;
    format_addr((struct sockaddr *)&ss, len, s->addr, sizeof(s->addr));
    if (is_wildcard(&ss) && gethostname(name, sizeof(name) - 1) == 0) {
        /* listening everywhere: the workers reach us by our name */
        const char *p = strrchr(s->addr, ':');
        char tail[16];
        snprintf(tail, sizeof(tail), "%s", p ? p : ":0");
        snprintf(s->addr, sizeof(s->addr), "%s%s", name, tail);
    }
    if (auto_host && is_loopback(&ss))
        jm_log(JM_LOG_WARN, "reportsrv",
               "report channel on %s, a loopback address (the host name resolves to it): jobs on "
               "other hosts cannot reach it and publish to Kafka; set "
               "distributor.report_listen",
               s->addr);
    return 0;
}

static int make_token(char out[33])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(b); i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

/* ---- connections ---- */

static conn_t *find_conn(jm_reportsrv_t *s, uint32_t cid)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->conns[i].cid == cid)
            return &s->conns[i];
    return NULL;
}

static void conn_close(conn_t *c)
{
    jm_chan_free(c->chan);
    c->chan = NULL;
}

/* Kafka's verdict on an event of a worker (the relay's answer): answer it if still connected;
 * an answer that cannot be sent breaks the stream (its worker falls back to Kafka). */
static void on_delivery(void *arg, uint64_t token, int ok)
{
    conn_t *c = find_conn(arg, (uint32_t)(token >> 32));
    if (c && c->chan && !c->broken && jm_report_chan_ack(c->chan, (uint32_t)token, ok) != 0) {
        jm_log(JM_LOG_WARN, "reportsrv", "worker at %s: answer not sent: closed", c->peer);
        c->broken = 1; /* not closed here: this may run inside serve() */
    }
}

jm_reportsrv_t *jm_reportsrv_new(jm_report_t *r, int64_t workflow_id, int64_t run_id,
                                 const char *listen, size_t max_conns, jm_err_t *err)
{
    jm_reportsrv_t *s = jm_calloc(1, sizeof(*s));
    s->lfd = -1;
    s->max_conns = max_conns > 0 ? max_conns : 1;
    if (make_token(s->token) != 0) {
        jm_err_set(err, JM_ERR_IO, "report channel: getrandom: %s", strerror(errno));
        free(s);
        return NULL;
    }
    if (open_listener(s, listen ? listen : "", err) != 0) {
        if (s->lfd >= 0)
            close(s->lfd);
        free(s);
        return NULL;
    }
    s->relay = jm_relay_new(r, workflow_id, run_id, jm_env_int("JOBMON_RELAY_LINGER_MS", 0),
                            on_delivery, s);
    jm_log(JM_LOG_INFO, "reportsrv", "report channel listening on %s", s->addr);
    return s;
}

void jm_reportsrv_destroy(jm_reportsrv_t *s)
{
    if (!s)
        return;
    jm_relay_destroy(s->relay); /* publishes what it holds; answers come no more */
    for (size_t i = 0; i < s->n; i++)
        conn_close(&s->conns[i]);
    jm_log(JM_LOG_INFO, "reportsrv",
           "report channel %s: %zu connection(s), %zu event(s) relayed, %zu refused (token), "
           "%zu over the cap",
           s->addr, s->st.accepted, s->st.events, s->st.bad_token, s->st.over_cap);
    free(s->conns);
    if (s->lfd >= 0)
        close(s->lfd);
    free(s);
}

const char *jm_reportsrv_addr(const jm_reportsrv_t *s)
{
    return s->addr;
}

const char *jm_reportsrv_token(const jm_reportsrv_t *s)
{
    return s->token;
}

void jm_reportsrv_stats(const jm_reportsrv_t *s, jm_reportsrv_stats_t *out)
{
    *out = s->st;
    out->open = 0;
    for (size_t i = 0; i < s->n; i++)
        out->open += s->conns[i].chan != NULL;
}

static void accept_all(jm_reportsrv_t *s)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(s->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && errno == EINTR)
            continue;
        if (fd < 0) {
            if (errno != EAGAIN)
                jm_log(JM_LOG_WARN, "reportsrv", "accept: %s", strerror(errno));
            return;
        }
        char peer[64];
        format_addr((struct sockaddr *)&ss, len, peer, sizeof(peer));
        if (s->n >= s->max_conns) {
            s->st.over_cap++;
            jm_log(JM_LOG_WARN, "reportsrv",
                   "worker at %s: %zu connections open (distributor.report_max_connections): "
                   "closed, it publishes to Kafka itself",
                   peer, s->n);
            close(fd);
            continue;
        }
        jm_chan_tune_tcp(fd);
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 16;
            s->conns = jm_realloc(s->conns, s->cap * sizeof(*s->conns));
        }
        if (++s->next_cid == 0)
            s->next_cid = 1; /* cid 0 would make a ti.reports token */
        conn_t *c = &s->conns[s->n++];
        *c = (conn_t){.chan = jm_chan_new(fd, 1), .cid = s->next_cid, .since = jm_time_mono_ms()};
        snprintf(c->peer, sizeof(c->peer), "%s", peer);
        s->st.accepted++;
    }
}

/* Constant-time comparison of the first message with "T <token>". */
static int token_ok(const jm_reportsrv_t *s, const char *buf, size_t len)
{
    size_t tl = strlen(s->token);
    if (len != tl + 2 || buf[0] != 'T' || buf[1] != ' ')
        return 0;
    unsigned char d = 0;
    for (size_t i = 0; i < tl; i++)
        d |= (unsigned char)(buf[2 + i] ^ s->token[i]);
    return d == 0;
}

static void refuse(jm_reportsrv_t *s, conn_t *c, const char *why)
{
    s->st.bad_token++;
    jm_log(JM_LOG_WARN, "reportsrv", "worker at %s: %s: connection closed", c->peer, why);
    conn_close(c);
}

/* Read what connection c sent: its token first, then events for the relay. */
static void serve(jm_reportsrv_t *s, conn_t *c)
{
    char *buf = NULL;
    size_t len = 0;
    int got;
    while (c->chan && !c->broken && (got = jm_chan_recv(c->chan, &buf, &len)) != 0) {
        if (got < 0) {
            if (!c->authed)
                refuse(s, c, errno == EPROTO ? "bad message length" : "closed before its token");
            else
                conn_close(c); /* the worker is done (or gone: it falls back by itself) */
            return;
        }
        if (!c->authed) {
            c->authed = token_ok(s, buf, len);
            free(buf);
            if (!c->authed)
                refuse(s, c, "wrong token");
            continue;
        }
        s->st.events++;
        jm_relay_take_msg(s->relay, c->chan, c->cid, ++c->nrecv, buf, len, c->peer, NULL);
        free(buf);
    }
}

/* Close connections silent past the token deadline; drop closed ones from the list. */
static void sweep(jm_reportsrv_t *s)
{
    int64_t now = jm_time_mono_ms();
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        conn_t *c = &s->conns[i];
        if (c->chan && !c->authed && now - c->since >= JM_REPORTSRV_AUTH_MS)
            refuse(s, c, "no token in time");
        if (c->broken)
            conn_close(c);
        if (c->chan)
            s->conns[k++] = *c;
    }
    s->n = k;
}

/* Serve the connections with something to read: one poll() over them all, not a recv() each
 * (a thousand jobs may be connected while few of them talk). */
static void serve_ready(jm_reportsrv_t *s)
{
    if (s->n == 0)
        return;
    struct pollfd *pfd = jm_calloc(s->n, sizeof(*pfd));
    for (size_t i = 0; i < s->n; i++)
        pfd[i] = (struct pollfd){.fd = jm_chan_fd(s->conns[i].chan), .events = POLLIN};
    int ready = poll(pfd, (nfds_t)s->n, 0);
    for (size_t i = 0; ready > 0 && i < s->n; i++)
        if (pfd[i].revents)
            serve(s, &s->conns[i]);
    free(pfd);
}

void jm_reportsrv_poll(jm_reportsrv_t *s)
{
    accept_all(s);
    serve_ready(s);
    jm_relay_flush(s->relay, 0);
    sweep(s);
}

size_t jm_reportsrv_pollfds(const jm_reportsrv_t *s, struct pollfd *fds, size_t max)
{
    size_t k = 0;
    if (max > 0)
        fds[0] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
    k++;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->conns[i].chan)
            continue;
        if (k < max)
            fds[k] = (struct pollfd){.fd = jm_chan_fd(s->conns[i].chan), .events = POLLIN};
        k++;
    }
    return k;
}

int jm_reportsrv_busy(const jm_reportsrv_t *s)
{
    return jm_relay_held(s->relay) > 0;
}

/*
 * chan.h — one report channel between a worker and its distributor, message by message
 * (worker/report.h has the protocol spoken over it).  Two transports, one interface:
 *   - a SOCK_SEQPACKET socketpair (local plugins): one message = one datagram;
 *   - a TCP connection (the Slurm plugin's workers on other hosts): one message = a 4-byte
 *     big-endian length, then that many bytes (at most JM_CHAN_MAX_MSG; 0 is never sent).
 * Receiving never blocks; a stream keeps the bytes of a message that arrived in pieces until
 * the rest does.  A message is sent whole or not at all as far as the caller knows: a stream
 * that could send only part of one is broken (the caller closes it).
 */
#ifndef JOBMON_WORKER_CHAN_H
#define JOBMON_WORKER_CHAN_H

#include <stddef.h>

#include "jobmon/common.h"

#define JM_CHAN_MAX_MSG (1024 * 1024)

typedef struct jm_chan_s jm_chan_t;

/* A channel over `fd` (taken: closed by jm_chan_free); stream = 1 for a TCP connection. */
jm_chan_t *jm_chan_new(int fd, int stream);
void jm_chan_free(jm_chan_t *c); /* closes the descriptor; accepts NULL */
int jm_chan_fd(const jm_chan_t *c);
int jm_chan_is_stream(const jm_chan_t *c);

/* Send one message.  0 when it went whole; -1 with errno otherwise.  A datagram is sent
 * without waiting (EAGAIN, EMSGSIZE, ENOBUFS: this message only, the channel still works).  A
 * stream message waits up to timeout_ms for room in the socket; EAGAIN when nothing of it
 * went, any other error (also a message sent in part: EPIPE) means the channel is broken. */
int jm_chan_send(jm_chan_t *c, const void *buf, size_t len, int timeout_ms);
/* Receive one message without blocking: 1 with *buf (NUL-terminated, caller frees) and *len,
 * 0 when no whole message is waiting, -1 when the channel is closed (errno 0), broken, or a
 * stream sent a length of 0 or above JM_CHAN_MAX_MSG (EPROTO). */
int jm_chan_recv(jm_chan_t *c, char **buf, size_t *len);

/* Split an address "HOST", "HOST:PORT", ":PORT", "[V6]", "[V6]:PORT" or a bare IPv6 address
 * into *host (NULL when empty) and *port (NULL when absent), new strings. */
void jm_chan_split_addr(const char *spec, char **host, char **port);
/* Connect to "host:port" ("[v6addr]:port" too) over TCP within timeout_ms, close-on-exec, tuned
 * with jm_chan_tune_tcp.  The descriptor (non-blocking), or -1 with err set. */
int jm_chan_connect(const char *addr, int timeout_ms, jm_err_t *err);
/* Both ends of a TCP channel: TCP_NODELAY (a message is one small segment, never held back);
 * keepalive after 60 s idle (3 probes 10 s apart) and TCP_USER_TIMEOUT 30 s, so a peer whose
 * host died is noticed (the worker then falls back to Kafka, the distributor frees the slot)
 * instead of swallowing messages until the kernel's 15-minute retransmission limit. */
void jm_chan_tune_tcp(int fd);

#endif

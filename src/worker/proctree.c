/*
 * proctree.c — sum the RSS of a process tree from /proc.
 *
 * One pass over proc_root's numeric entries reads each process's stat (ppid), then the
 * descendants of root are found by closure over the (pid, ppid) list and their status VmRSS
 * summed.  It does not signal or wait for anything.  Cost: two small reads per process on the
 * node per call; the worker calls it every ~100 ms only when a memory limit is set.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobmon/common.h"
#include "worker/proctree.h"

long jm_proc_parse_vmrss(const char *status_text)
{
    const char *p = status_text;
    while (p && *p) {
        if (strncmp(p, "VmRSS:", 6) == 0) {
            char *end = NULL;
            long kb = strtol(p + 6, &end, 10);
            if (end == p + 6 || kb < 0)
                return -1;
            return kb;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

int jm_proc_parse_stat(const char *stat_text, pid_t *ppid, pid_t *pgrp)
{
    /* "pid (comm) S ppid pgrp ..." — comm may contain anything, so find the LAST ')' */
    const char *rp = strrchr(stat_text, ')');
    char state;
    int pp, pg;
    if (!rp || sscanf(rp + 1, " %c %d %d", &state, &pp, &pg) != 3)
        return -1;
    *ppid = pp;
    *pgrp = pg;
    return 0;
}

static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

typedef struct {
    pid_t pid, ppid;
    int in_tree;
} proc_ent_t;

long jm_proc_tree_rss_kb(const char *proc_root, pid_t root, int *nproc)
{
    char path[512], buf[4096];
    long total = -1;
    int count = 0;
    size_t n = 0, cap = 256;
    proc_ent_t *ents = jm_malloc(cap * sizeof(*ents));
    DIR *d = opendir(proc_root);
    if (!d)
        goto out;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        snprintf(path, sizeof(path), "%s/%s/stat", proc_root, de->d_name);
        pid_t pp, pg;
        if (read_small(path, buf, sizeof(buf)) <= 0 || jm_proc_parse_stat(buf, &pp, &pg) != 0)
            continue;
        if (n == cap) {
            cap *= 2;
            ents = jm_realloc(ents, cap * sizeof(*ents));
        }
        ents[n].pid = (pid_t)atoi(de->d_name);
        ents[n].ppid = pp;
        ents[n].in_tree = ents[n].pid == root;
        n++;
    }
    closedir(d);
    /* closure: add children of tree members until nothing changes (trees are small) */
    size_t tn = 0;
    pid_t *tree = jm_malloc((n + 1) * sizeof(*tree));
    tree[tn++] = root;
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < n; i++) {
            if (ents[i].in_tree)
                continue;
            for (size_t j = 0; j < tn; j++)
                if (tree[j] == ents[i].ppid) {
                    ents[i].in_tree = changed = 1;
                    tree[tn++] = ents[i].pid;
                    break;
                }
        }
    }
    free(tree);
    for (size_t i = 0; i < n; i++) {
        if (!ents[i].in_tree)
            continue;
        snprintf(path, sizeof(path), "%s/%d/status", proc_root, (int)ents[i].pid);
        if (read_small(path, buf, sizeof(buf)) <= 0)
            continue;
        long kb = jm_proc_parse_vmrss(buf);
        if (total < 0)
            total = 0;
        if (kb > 0)
            total += kb;
        count++;
    }
out:
    free(ents);
    if (nproc)
        *nproc = count;
    return total;
}

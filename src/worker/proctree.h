/*
 * proctree.h — resident memory of a whole process tree, read from /proc.
 *
 * The worker enforces --memory-mb on the sum of VmRSS over the command and all its
 * descendants (the worker is a child subreaper, so daemonised grandchildren stay in the tree).
 * The parsers are pure and the proc root is a parameter so tests can use a fake tree.
 */
#ifndef JOBMON_WORKER_PROCTREE_H
#define JOBMON_WORKER_PROCTREE_H

#include <sys/types.h>

/* VmRSS in kB from the text of /proc/<pid>/status; -1 when absent (kernel threads, zombies). */
long jm_proc_parse_vmrss(const char *status_text);
/* ppid and pgrp from the text of /proc/<pid>/stat (the comm field may hold spaces and ')').
 * 0 on success, -1 when malformed. */
int jm_proc_parse_stat(const char *stat_text, pid_t *ppid, pid_t *pgrp);
/* Sum of VmRSS (kB) of `root` and every descendant, scanning `proc_root` (normally "/proc").
 * *nproc (may be NULL) receives the number of processes counted.  -1 if root is gone. */
long jm_proc_tree_rss_kb(const char *proc_root, pid_t root, int *nproc);

#endif

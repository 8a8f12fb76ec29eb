#!/usr/bin/env python3
"""bench/gen_e2e_dag.py N [TAG] — a workflow file of about N no-op tasks for the end-to-end
throughput benchmark: one root, a wide fan-out of W = N/10 tasks, and a chain of 9 tasks after
each of them (11 levels; 1 + 10*W tasks).  Commands are `true I J` (unique per task).  The
concurrency limits are set above N (0 would mean "none allowed" today).  JSON on stdout."""
import json
import sys

n = int(sys.argv[1])
tag = sys.argv[2] if len(sys.argv) > 2 else "bench"
w = max(1, n // 10)
chain = 9
tasks = [{"name": "root", "template": "noop", "args": {"i": 0, "j": 0}}]
for i in range(1, w + 1):
    prev = "root"
    for j in range(0, chain + 1):
        name = f"t{i}_{j}"
        tasks.append({"name": name, "template": "noop", "args": {"i": i, "j": j}, "upstream": [prev]})
        prev = name
limit = len(tasks) + 10
json.dump({
    "tool": "bench",
    "workflow_args": f"e2e-{n}-{tag}",
    "name": f"bench e2e {len(tasks)} no-op tasks",
    "max_concurrently_running": limit,
    "defaults": {"compute_resources": {"cores": 1, "memory": "64M", "runtime": "10m"},
                 "max_attempts": 1},
    "task_templates": [{"name": "noop", "command_template": "true {i} {j}",
                        "node_args": ["i", "j"], "max_concurrently_running": limit}],
    "tasks": tasks,
}, sys.stdout, separators=(",", ":"))

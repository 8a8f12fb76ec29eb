#!/usr/bin/env python3
"""bench/pool_overhead.py N [SLOTS] — jobmon-worker's own cost, without Kafka, the FSM or
PostgreSQL: this script plays the distributor (answers every event at once, like the
distributor after Kafka's ack; protocol in src/worker/report.h) for SLOTS `jobmon-worker
--serve` processes running N instances of `true` (pool), then for one-shot workers (one
`jobmon-worker ... --report-fd` per instance, SLOTS at a time: the plugin before the pool), then
runs the same N `sh -c 'true i'` with `xargs -P SLOTS`.  Prints the wall times and the ratios.
JOBMON_WORKER: the binary (default: ./jobmon-worker of the build tree)."""
import json, os, resource, selectors, socket, subprocess, sys, tempfile, time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
slots = int(sys.argv[2]) if len(sys.argv) > 2 else os.cpu_count()
worker = os.environ.get("JOBMON_WORKER", os.path.join(os.path.dirname(__file__), "..", "jobmon-worker"))
logs = tempfile.mkdtemp(prefix="jm-poolov-")
env = dict(os.environ, JOBMON_LOGS_DIR=logs, JOBMON_KAFKA_BROKERS="127.0.0.1:1")

def run_pool():
    sel = selectors.DefaultSelector()
    procs = []
    for _ in range(slots):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        p = subprocess.Popen([worker, "--serve", "--no-kill-check", "--report-fd", str(b.fileno())],
                             pass_fds=[b.fileno()], env=env)
        b.close()
        st = {"sock": a, "proc": p, "seq": 0}
        sel.register(a, selectors.EVENT_READ, st)
        procs.append(st)
    nxt, done = 0, 0
    t0 = time.monotonic()
    while done < n:
        for key, _ in sel.select():
            st = key.data
            msg = st["sock"].recv(1 << 20)
            if not msg:
                raise SystemExit("worker ended")
            if msg[:1] == b"R":
                if len(msg) > 1:
                    done += 1
                if nxt < n:
                    spec = {"ti_id": nxt + 1, "workflow_id": 7, "run_id": 8, "task_id": nxt + 1,
                            "command": f"true {nxt}", "distributor_id": f"1_{nxt + 1}"}
                    st["sock"].send(b"S " + json.dumps(spec).encode())
                    nxt += 1
            else:
                st["seq"] += 1
                st["sock"].send(b"A %d" % st["seq"])
    wall = time.monotonic() - t0
    for st in procs:
        st["sock"].close()
        st["proc"].wait()
    return wall

def spawn_oneshot(i, sel):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    p = subprocess.Popen([worker, "--ti-id", str(i + 1), "--workflow-id", "7", "--run-id", "8",
                          "--task-id", str(i + 1), "--command", f"true {i}", "--no-kill-check",
                          "--report-fd", str(b.fileno())], pass_fds=[b.fileno()],
                         env=dict(env, JOBMON_DISTRIBUTOR_ID=f"1_{i + 1}"))
    b.close()
    sel.register(a, selectors.EVENT_READ, {"sock": a, "proc": p, "seq": 0})

def run_oneshot():
    sel = selectors.DefaultSelector()
    nxt, done = 0, 0
    t0 = time.monotonic()
    while nxt < min(slots, n):
        spawn_oneshot(nxt, sel)
        nxt += 1
    while done < n:
        for key, _ in sel.select():
            st = key.data
            msg = st["sock"].recv(1 << 20)
            if msg:
                st["seq"] += 1
                st["sock"].send(b"A %d" % st["seq"])
                continue
            sel.unregister(st["sock"])  # EOF: the worker ended
            st["sock"].close()
            st["proc"].wait()
            done += 1
            if nxt < n:
                spawn_oneshot(nxt, sel)
                nxt += 1
    return time.monotonic() - t0

def run_xargs():
    t0 = time.monotonic()
    subprocess.run(f"seq 0 {n - 1} | xargs -P {slots} -I{{}} /bin/sh -c 'true {{}}'", shell=True, check=True)
    return time.monotonic() - t0

def cpu_of(phase):
    """Wall time of phase() and the CPU seconds (user + sys) of the processes it waited for."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = phase()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)

pool, pool_cpu = cpu_of(run_pool)
oneshot, oneshot_cpu = cpu_of(run_oneshot)
xargs, xargs_cpu = cpu_of(run_xargs)
subprocess.run(["rm", "-rf", logs])
print(f"{n} instances of true, {slots} at a time: pooled workers {pool:.2f} s ({pool / xargs:.1f}x xargs), "
      f"one-shot workers {oneshot:.2f} s ({oneshot / xargs:.1f}x), xargs -P {slots} {xargs:.2f} s; "
      f"CPU s (workers and commands): pooled {pool_cpu:.2f}, one-shot {oneshot_cpu:.2f}, xargs {xargs_cpu:.2f}")

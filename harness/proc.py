"""Per-thread CPU time of a process, from /proc."""

import os


def thread_cpu(pid):
    """{tid: (thread name, CPU seconds)} for the threads of pid now."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:       # the thread ended meanwhile
            continue
        out[tid] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def process_cpu(pid):
    """CPU seconds of the whole process, threads that already ended
    included (their time stays in the process's own /proc/PID/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / tick

"""Per-thread and per-process CPU time, from /proc."""

import os


def _stat_cpu(path):
    """utime + stime in seconds from a /proc .../stat file, or None if it
    is gone."""
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):   # ESRCH: it ended
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    """{tid: (thread name, CPU seconds)} for the threads of pid now."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
        except (FileNotFoundError, ProcessLookupError):  # it ended meanwhile
            continue
        sec = _stat_cpu(f"/proc/{pid}/task/{tid}/stat")
        if sec is not None:
            out[tid] = (name, sec)
    return out


def process_cpu(pid):
    """CPU seconds of the whole process, threads that already ended
    included (their time stays in the process's own /proc/PID/stat)."""
    return _stat_cpu(f"/proc/{pid}/stat") or 0.0

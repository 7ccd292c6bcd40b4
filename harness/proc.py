"""Per-thread and per-process CPU time and resident memory, from /proc."""

import os
import statistics


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


def rss_kib(pid):
    """The resident set size of pid (VmRSS), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def rss_flat(series):
    """Whether a series of RSS samples (KiB, in time order) does not grow:
    the median of its last quarter exceeds the median of its first quarter
    by at most 5 % + 8 MiB (medians: one sample with a larger peak is not
    a trend).  Returns (flat, first median, last median)."""
    q = max(1, len(series) // 4)
    first, last = statistics.median(series[:q]), statistics.median(series[-q:])
    return last <= first * 1.05 + 8 * 1024, first, last

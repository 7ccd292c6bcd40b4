"""Launch QEMU running the project's test guest, and read its serial log."""

import hashlib
import os
import re
import signal
import socket
import subprocess
import time

from .qmp import QMP

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", os.path.join(TOP, "build"))
QEMU = os.environ.get("QEMU", os.path.join(BUILD, "qemu", "qemu-system-x86_64"))
GUEST = os.path.join(BUILD, "guest")
CACHE = os.environ.get("QEMU_MT_CACHE", os.path.join(
    os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "qemu-mt"))
QEMU72_ROOT = os.path.join(CACHE, "qemu72", "root")


def qemu72():
    """Debian bookworm's QEMU 7.2 as scripts/fetch-qemu72.sh unpacked it:
    (binary, environment, extra arguments), or None if it is not there."""
    binary = os.path.join(QEMU72_ROOT, "usr", "bin", "qemu-system-x86_64")
    if not os.path.exists(binary):
        return None
    env = dict(os.environ, QEMU_MODULE_DIR=os.path.join(
        QEMU72_ROOT, "usr", "lib", "x86_64-linux-gnu", "qemu"))
    return binary, env, ["-L", "/usr/share/qemu", "-L", "/usr/share/seabios"]

HB_RE = re.compile(r"WL HB seq=(\d+) t_ms=(\d+) dirtied=(\d+) checked=(\d+) "
                   r"passes=(\d+) errors=(\d+)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def heartbeat(line):
    """Parse a WL HB line into a dict, or None."""
    m = HB_RE.search(line)
    if not m:
        return None
    keys = ("seq", "t_ms", "dirtied", "checked", "passes", "errors")
    hb = dict(zip(keys, map(int, m.groups())))
    grown = re.search(r" grown=(\d+)", line)     # only with wl.grow_mb
    if grown:
        hb["grown"] = int(grown.group(1))
    return hb


class SerialLog:
    """The workload's lines in a serial log file (serial_path)."""

    def __init__(self, serial_path):
        self.serial_path = serial_path

    def serial_lines(self):
        try:
            with open(self.serial_path, errors="replace") as f:
                return [line.rstrip("\r\n") for line in f]
        except OSError:
            return []

    def heartbeats(self):
        return [hb for hb in map(heartbeat, self.serial_lines()) if hb]

    def corruptions(self):
        return [line for line in self.serial_lines() if line.startswith("WL CORRUPT")]


class VM(SerialLog):
    """One QEMU process with the test guest.

    workload: dict of wl.* kernel parameters (mode, mb, dirty_mbps, ...).
    mem_path: back guest RAM with a shared file there, so a test can reach
    guest memory from outside (used to prove corruption is detected).
    """

    def __init__(self, workdir, name, mem_mb=512, workload=None,
                 incoming=None, mem_path=None, qemu=None, extra_args=(),
                 env=None, wrapper=(), kernel_args=""):
        self.workdir = workdir
        self.name = name
        self.mem_mb = mem_mb
        self.workload = dict(workload or {})
        self.incoming = incoming
        self.mem_path = mem_path
        self.qemu = qemu or QEMU
        self.extra_args = list(extra_args)
        self.kernel_args = kernel_args
        self.env = env
        # e.g. ["ip", "netns", "exec", NAME]: it execs QEMU, same PID
        self.wrapper = list(wrapper)
        self.qmp_path = os.path.join(workdir, f"{name}.qmp")
        SerialLog.__init__(self, os.path.join(workdir, f"{name}.serial"))
        self.stderr_path = os.path.join(workdir, f"{name}.stderr")
        self.proc = None
        self.qmp = None
        self._stderr = None

    def cmdline(self):
        wl = " ".join(f"wl.{k}={v}" for k, v in self.workload.items())
        args = self.wrapper + [
            self.qemu, "-accel", "tcg", "-M", "q35", "-smp", "1",
            "-m", str(self.mem_mb), "-nodefaults", "-display", "none",
            "-vga", "none", "-no-reboot",
            "-serial", f"file:{self.serial_path}",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            "-kernel", os.path.join(GUEST, "vmlinuz"),
            "-initrd", os.path.join(GUEST, "initrd.img"),
            "-append", "console=ttyS0 panic=-1 transparent_hugepage=never "
                       f"quiet {self.kernel_args} {wl}",
        ]
        # RAM is always an explicit backend "ram0" (so the RAMBlock has the
        # same name whether or not it is file-backed on one side)
        if self.mem_path:
            backend = (f"memory-backend-file,id=ram0,size={self.mem_mb}M,"
                       f"mem-path={self.mem_path},share=on")
        else:
            backend = f"memory-backend-ram,id=ram0,size={self.mem_mb}M"
        args += ["-object", backend, "-machine", "memory-backend=ram0"]
        if self.incoming:
            args += ["-incoming", self.incoming]
        return args + self.extra_args

    def start(self):
        for p in (self.qmp_path, self.serial_path):
            if os.path.exists(p):
                os.unlink(p)
        self._stderr = open(self.stderr_path, "wb")
        # a process group of its own: kill() reaches QEMU under a wrapper
        # (strace, ip netns exec) too
        self.proc = subprocess.Popen(self.cmdline(), stdin=subprocess.DEVNULL,
                                     stdout=self._stderr, stderr=self._stderr,
                                     env=self.env, start_new_session=True)
        try:
            self.qmp = QMP(self.qmp_path).connect(wait=20)
        except Exception:
            self.kill()
            raise RuntimeError(f"{self.name}: QEMU did not start: {self.stderr()}")
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def kill(self, sig=signal.SIGKILL):
        if self.qmp:
            self.qmp.close()
            self.qmp = None
        if self.alive():
            # the whole group: a tracer killed by SIGKILL leaves its tracee
            # running
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.wrapper and self.proc is not None:
            # a tracee that outlived its wrapper
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._stderr:
            self._stderr.close()
            self._stderr = None

    def quit(self):
        if self.alive() and self.qmp:
            try:
                self.qmp.cmd("quit")
                self.proc.wait(timeout=20)
            except Exception:
                pass
        self.kill()

    # serial log (SerialLog) -------------------------------------------

    def wait_for(self, pred, timeout, what="condition", interval=0.1):
        """Poll pred() until it returns a true value; return that value."""
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            if not self.alive():
                raise RuntimeError(f"{self.name}: QEMU exited while waiting for "
                                   f"{what}: {self.stderr()}")
            if time.monotonic() > deadline:
                tail = "\n".join(self.serial_lines()[-5:])
                raise TimeoutError(f"{self.name}: timed out waiting for {what};"
                                   f" serial tail:\n{tail}")
            time.sleep(interval)

    def wait_for_line(self, pattern, timeout=60):
        rx = re.compile(pattern)

        def find():
            return next((m for m in map(rx.search, self.serial_lines()) if m), None)
        return self.wait_for(find, timeout, what=repr(pattern))

    def wait_passes(self, passes, timeout, what="verification passes"):
        """Wait until the heartbeats in this log show `passes` more whole
        verification passes than the first one; return the heartbeats."""
        return self.wait_for(lambda: (hbs := self.heartbeats()) and
                             hbs[-1]["passes"] >= hbs[0]["passes"] + passes and hbs,
                             timeout, what)

    def assert_healthy_after(self, last_seq, passes=2, timeout=90,
                             what="verification passes", since=0):
        """The guest carries on here after a migration or loadvm: its
        heartbeats (from the since-th on) continue past last_seq in order,
        `passes` more whole verification passes over every page in use run,
        and the workload reports no corruption.  Returns those heartbeats."""
        hbs = self.wait_for(lambda: (h := self.heartbeats()[since:]) and
                            h[-1]["passes"] >= h[0]["passes"] + passes and h,
                            timeout, what)
        assert hbs[0]["seq"] > last_seq, (hbs[0], last_seq)
        seqs = [hb["seq"] for hb in hbs]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
        assert hbs[-1]["errors"] == 0, hbs[-1]
        assert self.corruptions() == [], self.corruptions()
        return hbs

    def memory_digest(self):
        """SHA-256 of the guest's RAM (pmemsave of all of it)."""
        path = os.path.join(self.workdir, f"{self.name}.mem")
        self.qmp.cmd("pmemsave", val=0, size=self.mem_mb << 20, filename=path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        os.unlink(path)
        return digest

    def wait_ready(self, timeout=120):
        """Wait until the workload has filled its region and beats."""
        self.wait_for_line(r"^WL READY", timeout)
        self.wait_for(lambda: len(self.heartbeats()) >= 1, timeout, "heartbeat")

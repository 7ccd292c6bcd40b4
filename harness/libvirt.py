"""Two unprivileged libvirt session daemons on one host, for virsh migrate.

Each daemon runs as the system user USER with XDG directories of its own
under one work directory, its own host_uuid (libvirt refuses a migration
between hosts with the same UUID), security_driver "none", and a debug log
of the QMP traffic (filter qemu.qemu_monitor).  Clients reach it with
qemu+unix:///session?socket=...; virsh runs as USER too (a session daemon
serves its own user).
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

from .vm import GUEST, QEMU, TOP

USER = "qemu-mt"
LIBVIRTD = "/usr/sbin/libvirtd"
VIRSH = "/usr/bin/virsh"


def ensure_user():
    """The unprivileged user the daemons and their QEMUs run as."""
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group",
                        "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", USER], check=True)
        return pwd.getpwnam(USER)


class Daemon:
    def __init__(self, top, name):
        self.name = name
        self.dir = os.path.join(top, name)
        self.log = os.path.join(self.dir, "libvirtd.log")
        self.sock = os.path.join(self.dir, "run", "libvirt", "libvirt-sock")
        self.uri = f"qemu+unix:///session?socket={self.sock}"
        self.env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": os.path.join(self.dir, "home"),
            "XDG_CONFIG_HOME": os.path.join(self.dir, "config"),
            "XDG_CACHE_HOME": os.path.join(self.dir, "cache"),
            "XDG_RUNTIME_DIR": os.path.join(self.dir, "run"),
        }

    def configure(self):
        conf = os.path.join(self.env["XDG_CONFIG_HOME"], "libvirt")
        for d in (conf, self.env["HOME"], self.env["XDG_CACHE_HOME"],
                  self.env["XDG_RUNTIME_DIR"]):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.env["XDG_RUNTIME_DIR"], 0o700)
        with open(os.path.join(conf, "libvirtd.conf"), "w") as f:
            f.write(f'host_uuid = "{uuid.uuid4()}"\n'
                    'log_filters = "1:qemu.qemu_monitor 3:*"\n'
                    f'log_outputs = "1:file:{self.log}"\n')
        with open(os.path.join(conf, "qemu.conf"), "w") as f:
            f.write('security_driver = "none"\n')

    def start(self):
        subprocess.run(["runuser", "-u", USER, "--", "env", "-i",
                        *[f"{k}={v}" for k, v in self.env.items()],
                        LIBVIRTD, "-d"], check=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if os.path.exists(self.sock) and self.virsh("version").returncode == 0:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"libvirtd {self.name} did not come up: {self.log}")

    def virsh(self, *args, timeout=300):
        return subprocess.run(["runuser", "-u", USER, "--", "env", "-i",
                               *[f"{k}={v}" for k, v in self.env.items()],
                               VIRSH, "-c", self.uri, *args],
                              capture_output=True, text=True, timeout=timeout)

    def check(self, *args, timeout=300):
        r = self.virsh(*args, timeout=timeout)
        assert r.returncode == 0, f"virsh {' '.join(args)}: {r.stderr}"
        return r.stdout

    def domstate(self, dom):
        r = self.virsh("domstate", dom)
        return r.stdout.strip() if r.returncode == 0 else None

    def pid(self):
        try:
            with open(os.path.join(self.env["XDG_RUNTIME_DIR"], "libvirt",
                                   "libvirtd.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        for dom in self.virsh("list", "--all", "--name").stdout.split():
            self.virsh("destroy", dom)
            self.virsh("undefine", dom)
        pid = self.pid()
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)

    def qmp_sent(self, command):
        """Arguments of every QMP command of that name this daemon sent."""
        out = []
        pat = re.compile(r'QEMU_MONITOR_SEND_MSG: mon=\S+ msg=(\{"execute":"'
                         + re.escape(command) + r'".*\})')
        with open(self.log, errors="replace") as f:
            for line in f:
                m = pat.search(line)
                if m:
                    out.append(m.group(1))
        return out

    def qemu_log(self, dom):
        """What this daemon's QEMU for dom wrote to stderr (libvirt's
        per-domain log), or "" if it never ran here."""
        path = os.path.join(self.env["XDG_CACHE_HOME"], "libvirt", "qemu",
                            "log", f"{dom}.log")
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def qmp_replies(self, key):
        """Raw QMP replies this daemon received that contain "key":."""
        with open(self.log, errors="replace") as f:
            return [line for line in f
                    if "QEMU_MONITOR_RECV_REPLY" in line and f'"{key}":' in line]


class Pair:
    """Two daemons (a, b) and the test guest's domain XML."""

    def __init__(self):
        self.user = ensure_user()
        self.top = tempfile.mkdtemp(prefix="qemu-mt-libvirt.")
        os.chmod(self.top, 0o755)
        self.emulator, self.kernel, self.initrd = self._copy_binaries()
        self.a = Daemon(self.top, "a")
        self.b = Daemon(self.top, "b")
        for d in (self.a, self.b):
            d.configure()
        self._chown()
        for d in (self.a, self.b):
            d.start()

    def _copy_binaries(self):
        """Copies USER can read wherever the checkout is (a clone under
        /root is not): QEMU installed there as an operator would install
        it (make install PREFIX=...), and the guest.  LIBVIRT_EMULATOR
        names an installed QEMU to use instead (the .deb's
        /usr/bin/qemu-system-x86_64: scripts/deb-binary.sh e2e)."""
        emulator = os.environ.get("LIBVIRT_EMULATOR")
        if not emulator:
            subprocess.run([os.path.join(TOP, "scripts", "install.sh"), self.top],
                           check=True,
                           env=dict(os.environ, QEMU_BUILD=os.path.dirname(QEMU)))
            emulator = os.path.join(self.top, "bin", "qemu-system-x86_64")
        kernel = shutil.copy2(os.path.join(GUEST, "vmlinuz"), self.top)
        initrd = shutil.copy2(os.path.join(GUEST, "initrd.img"), self.top)
        return emulator, kernel, initrd

    def _chown(self):
        for root, dirs, files in os.walk(self.top):
            for p in [root] + [os.path.join(root, n) for n in dirs + files]:
                os.chown(p, self.user.pw_uid, self.user.pw_gid,
                         follow_symlinks=False)

    def domain_xml(self, name, serial, workload, emulator=None, mem_mb=512,
                   qemu_args=()):
        """The project's guest as a TCG domain.  The serial log is appended
        to by the QEMU on each side in turn: one continuous log.  qemu_args
        go to QEMU's command line (<qemu:commandline>)."""
        wl = " ".join(f"wl.{k}={v}" for k, v in workload.items())
        emulator = emulator or self.emulator
        ns = " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'"
        cmdline = ""
        if qemu_args:
            cmdline = ("  <qemu:commandline>\n"
                       + "".join(f"    <qemu:arg value='{a}'/>\n" for a in qemu_args)
                       + "  </qemu:commandline>\n")
        xml = f"""<domain type='qemu'{ns if qemu_args else ''}>
  <name>{name}</name>
  <memory unit='MiB'>{mem_mb}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{self.kernel}</kernel>
    <initrd>{self.initrd}</initrd>
    <cmdline>console=ttyS0 panic=-1 transparent_hugepage=never quiet {wl}</cmdline>
  </os>
  <on_reboot>destroy</on_reboot>
  <devices>
    <emulator>{emulator}</emulator>
    <serial type='file'>
      <source path='{serial}' append='on'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    <video><model type='none'/></video>
  </devices>
{cmdline}</domain>
"""
        path = os.path.join(self.top, f"{name}.xml")
        with open(path, "w") as f:
            f.write(xml)
        os.chown(path, self.user.pw_uid, self.user.pw_gid)
        return path

    def close(self, keep=None):
        for d in (self.a, self.b):
            d.stop()
        if keep:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(self.top, keep, ignore=shutil.ignore_patterns(
                "run", "bin", "vmlinuz", "initrd.img"))
        shutil.rmtree(self.top, ignore_errors=True)

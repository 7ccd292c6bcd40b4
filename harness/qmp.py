"""A minimal synchronous QMP client over a unix socket."""

import json
import socket
import time


class QMPError(Exception):
    """A QMP command answered with an error."""

    def __init__(self, cmd, error):
        self.cmd = cmd
        self.error = error
        self.desc = error.get("desc", "")
        super().__init__(f"{cmd}: {error.get('class')}: {self.desc}")


class QMP:
    def __init__(self, path, timeout=30.0):
        self.path = path
        self.timeout = timeout
        self.sock = None
        self.buf = b""
        self.events = []

    def connect(self, wait=10.0):
        deadline = time.monotonic() + wait
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        s.settimeout(self.timeout)
        self.sock = s
        # QEMU may emit an event (RESUME at startup) into a connection it
        # has accepted before it sends the greeting
        greeting = self._recv()
        while "event" in greeting:
            self.events.append(greeting)
            greeting = self._recv()
        assert "QMP" in greeting, greeting
        self.cmd("qmp_capabilities")
        return self

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def _recv(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd_raw(self, name, **args):
        """Send a command; return the whole response (return or error)."""
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            resp = self._recv()
            if "event" in resp:
                self.events.append(resp)
                continue
            return resp

    def cmd(self, name, **args):
        """Send a command; return its 'return' value or raise QMPError."""
        resp = self.cmd_raw(name, **args)
        if "error" in resp:
            raise QMPError(name, resp["error"])
        return resp["return"]

    def hmp(self, line):
        """Run an HMP command through QMP; return its text output."""
        return self.cmd("human-monitor-command", **{"command-line": line})

    def poll_events(self, timeout=0.0):
        """Collect pending events without blocking longer than timeout."""
        self.sock.settimeout(timeout if timeout > 0 else 0.001)
        try:
            while True:
                resp = self._recv()
                if "event" in resp:
                    self.events.append(resp)
        except (socket.timeout, BlockingIOError):
            pass
        finally:
            self.sock.settimeout(self.timeout)
        return self.events

    def event_wait(self, name, timeout=30.0, match=None):
        """The first event called name (and for which match(event) is true,
        if given) received so far or within timeout seconds; it stays in
        self.events.  Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.poll_events():
                if ev["event"] == name and (match is None or match(ev)):
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {name} event in {timeout} s")
            self.poll_events(min(left, 0.1))

    def clear_events(self):
        """Forget the events received so far."""
        self.poll_events()
        self.events.clear()

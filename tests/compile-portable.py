#!/usr/bin/env python3
"""Compile migration/socket.c as a host without TCP_NOTSENT_LOWAT and
SIOCOUTQ would (Windows, the BSDs, macOS): the same command as the build's
(compile_commands.json, -Werror included), on a copy of the file that
undefines both after its includes.  Prints one TAP line; exit status 1 if
it does not compile.

Usage: compile-portable.py QEMU_BUILD SRC"""

import json
import os
import shlex
import subprocess
import sys
import tempfile


def main():
    build, src = sys.argv[1], sys.argv[2]
    name = "socket.c without TCP_NOTSENT_LOWAT and SIOCOUTQ"
    with open(os.path.join(build, "compile_commands.json")) as f:
        entry = next(c for c in json.load(f)
                     if c["file"].endswith("migration/socket.c"))
    with open(os.path.join(src, "migration", "socket.c")) as f:
        text = f.read()
    # after the last #include, before the first definition
    at = text.index("\n", text.rindex("#include")) + 1
    text = text[:at] + "#undef TCP_NOTSENT_LOWAT\n#undef SIOCOUTQ\n" + text[at:]
    # the copy sits beside the original: its quoted includes resolve alike
    fd, copy = tempfile.mkstemp(suffix=".c", prefix=".socket-portable-",
                                dir=os.path.join(src, "migration"))
    obj = copy[:-2] + ".o"
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        args, skip = [], False
        for a in shlex.split(entry["command"]):
            if skip:
                skip = False
                continue
            if a in ("-MQ", "-MF", "-o"):
                skip = True
                continue
            if a == "-MD":
                continue
            if a.endswith("migration/socket.c"):
                a = copy
            args.append(a)
        args += ["-o", obj]
        r = subprocess.run(args, cwd=entry["directory"], capture_output=True,
                           text=True)
        # neither call may remain in the object
        nm = subprocess.run(["nm", "-u", obj], capture_output=True,
                            text=True).stdout if r.returncode == 0 else ""
        bad = [s for s in ("ioctl", "setsockopt") if s in nm.split()]
        if r.returncode != 0 or bad:
            sys.stderr.write(r.stderr[-4000:] + "".join(
                f"still calls {s}\n" for s in bad))
            print(f"not ok - {name}")
            return 1
        print(f"ok - {name}")
        return 0
    finally:
        for p in (copy, obj):
            if os.path.exists(p):
                os.unlink(p)


if __name__ == "__main__":
    sys.exit(main())

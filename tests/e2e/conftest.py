import os
import subprocess
import sys

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, TOP)

from harness.vm import BUILD, GUEST, QEMU, VM  # noqa: E402


def pytest_addoption(parser):
    # tests/e2e/test_faults.py
    parser.addoption("--fault-reps", type=int, default=2,
                     help="faults of each kind per test (make soak-faults: 100)")
    parser.addoption("--fault-seed", default=None,
                     help="seed of the random fault points (default: random, printed)")


def pytest_sessionstart(session):
    for path in (QEMU, os.path.join(GUEST, "vmlinuz"), os.path.join(GUEST, "initrd.img")):
        if not os.path.exists(path):
            pytest.exit(f"missing {path}: run 'make build guest' first", returncode=2)


@pytest.fixture
def vms(tmp_path):
    """Factory for VMs; every VM it made is killed at the end of the test."""
    made = []

    def make(name, **kw):
        vm = VM(str(tmp_path), name, **kw)
        made.append(vm)
        return vm
    yield make
    for vm in made:
        vm.kill()
    for vm in made:
        if vm.mem_path and os.path.exists(vm.mem_path):
            os.unlink(vm.mem_path)


@pytest.fixture(scope="session")
def zlib_shim():
    """tests/e2e/zlib_shim.c built as an LD_PRELOAD library (fault injection
    into zlib); returns its path."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zlib_shim.c")
    out = os.path.join(BUILD, "zlib-shim.so")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror",
                        "-o", out, src, "-lz", "-ldl"], check=True)
    return out

import os
import sys

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, TOP)

from harness.vm import GUEST, QEMU, VM  # noqa: E402


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

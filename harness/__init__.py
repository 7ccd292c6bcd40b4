"""Python harness shared by the e2e tests and the benchmarks: a small QMP
client, a launcher for QEMU running the project's test guest, and migration
helpers.  Standard library only (runs on Debian's python3)."""

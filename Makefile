# Multi-thread compression for QEMU live migration: the series and its tooling.
# The two commands that do everything on a fresh machine:
#   make demo    live migration of a busy guest, compression off and on, table
#   make check   the whole test suite
# See README.rst for the rest.

SHELL := /bin/bash
S := scripts

.PHONY: all help deps base materialize export outgoing build build-base install source-package deb check-codecs verify guest qemu72 unit qtest e2e fuzz soak soak-faults check repeat sanitize demo bench bench-default bench-engine bench-codec bench-xbzrle clean distclean

# the patched QEMU (same as build)
all: build

# this list: each target and the first line of the comment above it
help:
	@awk '/^# / { if (!c) c = substr($$0, 3); next } \
	     /^[a-z0-9-]+:/ { sub(/:.*/, ""); if (c) printf "  %-16s %s\n", $$0, c } { c = "" }' $(firstword $(MAKEFILE_LIST))

# Debian packages the project needs (as root; skipped otherwise)
deps:
	@if [ "$$(id -u)" = 0 ]; then $(S)/install-deps.sh; else echo "not root: skipping deps"; fi
# fetch and checksum-verify Debian trixie's qemu source (the base)
base:
	$(S)/fetch-base.sh
# build/src: the base as a git tree, one commit per patch of patches/
materialize: base
	$(S)/materialize.sh
# write build/src's commits back to patches/ (after editing a patch there)
export:
	$(S)/export.sh
# the series to post, signed off in your git name (build/outgoing)
outgoing: materialize
	$(S)/outgoing.sh
# the patched QEMU and migration-test in build/qemu
build: deps materialize
	$(S)/build.sh
# the unpatched base, built alike, in build/qemu-base (do-no-harm bench)
# the "before" of the do-no-harm benchmark (bench.py --binary base=build/qemu-base/...)
build-base: deps base
	SRC=$(CURDIR)/build/base QEMU_BUILD=$(CURDIR)/build/qemu-base \
	    TARGETS=qemu-system-x86_64 $(S)/build.sh
# the patched QEMU for use without the build tree (libvirt <emulator>)
install: build
	$(S)/install.sh $(PREFIX)
# Debian source package of qemu with the series (build/pkg), and its check
source-package: materialize
	$(S)/source-package.sh
# binary packages in a trixie chroot (CHROOT), then the libvirt e2e
# against the installed qemu-system-x86 (long: not in make check)
deb: source-package
	$(S)/deb-binary.sh chroot
	$(S)/deb-binary.sh build
	$(S)/deb-binary.sh e2e
# every patch: checkpatch clean, no identity, builds on its own
verify: build
	$(S)/verify-series.sh
# the test guest (kernel + initramfs with the workload)
guest: deps
	guest/build.sh
# Debian bookworm's QEMU 7.2, unpacked: the old implementation, for e2e/bench
qemu72: deps
	$(S)/fetch-qemu72.sh
# the series' unit tests
unit: build
	tests/unit.sh
# migration-test, whole (--full -m slow)
qtest: build
	tests/qtest.sh
# migration-test against builds without zstd and without lz4 (long)
check-codecs: materialize
	tests/qtest-codecs.sh
# end-to-end tests: real guest, tc-shaped link, QEMU 7.2, libvirt
e2e: build guest qemu72
	tests/e2e.sh
# the whole suite, stage by stage (scripts/check.sh lists the stages)
check:
	$(S)/check.sh
# the incoming stream fuzzer, loaded by the ASan+UBSan build (build/qemu-asan)
# for FUZZ_SECONDS (default 3600); output in build/fuzz (see tests/fuzz.sh)
fuzz: build guest
	QEMU_BUILD=$(CURDIR)/build/qemu-asan EXTRA_CONFIGURE="--enable-asan --enable-ubsan" \
	    TARGETS=qemu-system-x86_64 $(S)/build.sh
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),3600) FUZZ_QEMU=$(CURDIR)/build/qemu-asan/qemu-system-x86_64 \
	    tests/fuzz.sh build/logs/fuzz-asan.tap
# HOPS (default 200) ping-pong migrations, RSS sampled (long)
# HOPS (default 200) ping-pong migrations of the busy guest, compress +
# XBZRLE + skip-unused-pages, RSS of both sides sampled (build/soak/rss.csv)
soak: build guest
	/usr/bin/python3 tests/soak.py --hops $(or $(HOPS),200)
# tests/e2e/test_faults.py with FAULT_REPS (default 100) faults of each kind
soak-faults: build guest
	tests/e2e.sh build/logs/soak-faults.tap -k test_faults -s \
	    --fault-reps $(or $(FAULT_REPS),100) $(if $(FAULT_SEED),--fault-seed $(FAULT_SEED))
# the compression qtests RUNS times (default 200), JOBS copies side by side
repeat: build
	tests/repeat.sh $(or $(RUNS),200) $(or $(JOBS),1)
# the compression tests under ASan + UBSan and TSan (SANITIZERS=asan|tsan)
# ASan + UBSan (build/qemu-asan) and TSan (build/qemu-tsan) builds running
# the compression tests; SANITIZERS="asan" or "tsan" runs one of them
sanitize: materialize guest qemu72
	tests/sanitize.sh $(SANITIZERS)
demo: build guest
	/usr/bin/python3 bench/demo.py $(DEMO_ARGS)
# benchmark scenarios into docs/bench (SCENARIO=NAME; none: the standard set)
# named scenarios on a tc-shaped link (bench/scenarios.py; list them with
# bench/scenarios.py): SCENARIO=NAME (or several, space separated) reruns
# that one into its docs/bench/ folder, none given: the standard set;
# BENCH_ARGS (bench/bench.py --help) add to or override their arguments
bench: build guest qemu72
	for s in $(or $(SCENARIO),$$(/usr/bin/python3 bench/scenarios.py --standard)); do \
	    /usr/bin/python3 bench/bench.py --scenario $$s $(BENCH_ARGS) || exit 1; done
# every default mode, then skip-unused on 8 GiB, into build/bench*
# the former default: every default mode, 1 GiB guest, into build/bench;
# then an 8 GiB guest that uses 1 GiB, with and without skip-unused-pages
# (BENCH_UNUSED_ARGS), into build/bench-unused
bench-default: build guest qemu72
	/usr/bin/python3 bench/bench.py $(BENCH_ARGS)
	/usr/bin/python3 bench/bench.py --mem-mb 8192 --region-mb 1024 \
	    --workloads idle --out build/bench-unused --timeout 300 \
	    --modes none,skip,compress,compress+skip,compress-zstd,compress-zstd+skip \
	    $(BENCH_UNUSED_ARGS)
# pages/s through the compression path, no link
bench-engine: build guest
	/usr/bin/python3 bench/engine.py $(ENGINE_ARGS)
# the page codecs alone on a dump of the test guest's RAM (one core)
bench-codec: build guest
	/usr/bin/python3 bench/codec.py $(CODEC_ARGS)

# QEMU's XBZRLE encoder per page, compiled from build/src (one core)
bench-xbzrle: build
	bench/xbzrle.sh

# remove the builds, the guest and the logs (not the downloads)
clean:
	rm -rf build/qemu build/guest build/logs
# remove all of build/
distclean:
	rm -rf build

# tests/reliability.mk - fault injection, leak checking, packet loss, soak
# and static analysis beyond `make lint`.
#
#   make test-reliability   the FAULT_INJECTION build (ASan) under allocation
#                           failures, refused interest changes and start-up
#                           deaths                             (in make test)
#   make test-valgrind      valgrind --leak-check=full over a short scenario
#                                                              (in make test)
#   make test-netns         5% packet loss in a network namespace (root)
#   make soak               20,000 connections x 1 line/s for SOAK_SECONDS
#   make bench-latency      the load tests' p99 limits (benchmark figures)
#   make test-long          the long runs, under an hour (see below)
#   make lint-tidy          clang-tidy with the checked-in .clang-tidy
#
# The reliability integration tests that need no special build
# (tests/integration/test_rel_*.py, test_fault_*.py) run inside the normal
# `make integration` and `make integration-asan` passes.

FAULT_BUILD    = build-fault
VALGRIND_BUILD = build-valgrind
SOAK_SECONDS  ?= 600
SOAK_CONNS    ?= 20000
FAULT_LDFLAGS  = -fsanitize=address,undefined \
                 -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=poller_mod

EXTRA_DEPS   += valgrind strace faketime nftables clang-tidy util-linux
TEST_TARGETS += test-reliability test-valgrind

.PHONY: test-reliability test-valgrind test-netns soak lint-tidy fault-build bench-latency \
        test-long \
        libc-build

# The fault build: ASan+UBSan, libc malloc, malloc/calloc/realloc and
# poller_mod wrapped by src/fault.c (which only this build links).
fault-build:
	$(MAKE) BUILD=$(FAULT_BUILD) SAN=1 EXTRA_CFLAGS=-DFAULT_INJECTION \
	  EXTRA_OBJS=$(FAULT_BUILD)/obj/fault.o LDFLAGS="$(FAULT_LDFLAGS)" \
	  $(FAULT_BUILD)/stampd

# libc malloc: valgrind sees every allocation (jemalloc hides them in its
# own arenas), and libfaketime can initialise (jemalloc's first
# clock_gettime() recurses into it).
libc-build:
	$(MAKE) BUILD=$(VALGRIND_BUILD) MALLOC=libc $(VALGRIND_BUILD)/stampd

test-reliability: fault-build libc-build
	STAMPD_FAULT_BIN=$(CURDIR)/$(FAULT_BUILD)/stampd STAMPD_SANITIZED=1 \
	  $(PYTHON) -m pytest -q tests/integration/test_fault_alloc.py \
	  tests/integration/test_fault_leak.py tests/integration/test_fault_poller.py \
	  tests/integration/test_fault_stall.py tests/integration/test_health.py
	STAMPD_CLOCK_BIN=$(CURDIR)/$(VALGRIND_BUILD)/stampd \
	  $(PYTHON) -m pytest -q tests/integration/test_fault_clock.py

test-valgrind: libc-build
	STAMPD_BIN=$(CURDIR)/$(VALGRIND_BUILD)/stampd STAMPD_VALGRIND=1 \
	  $(PYTHON) -m pytest -q tests/integration/test_rel_valgrind.py

test-netns: all
	STAMPD_BIN=$(CURDIR)/$(BUILD)/stampd STAMPD_NETNS=1 \
	  $(PYTHON) -m pytest -q -s tests/integration/test_rel_netns.py

soak: all
	STAMPD_BIN=$(CURDIR)/$(BUILD)/stampd STAMPD_SOAK_SECONDS=$(SOAK_SECONDS) \
	  STAMPD_SOAK_CONNS=$(SOAK_CONNS) \
	  $(PYTHON) -m pytest -q -s tests/integration/test_rel_soak.py

# `make lint` runs clang-tidy too (the top Makefile's recipe is cppcheck).
lint: lint-tidy

lint-tidy:
	clang-tidy --quiet $(filter-out src/poller_kqueue.c,$(wildcard src/*.c)) \
	  -- -std=gnu11 -Iinclude -D_GNU_SOURCE -DPOLLER_$(POLLER) 2>&1 | \
	  { ! grep -E 'warning:|error:'; }

# The latency limits of the load tests (an honest client's p99 under 10 ms
# next to 2,000 slowloris connections, 100 pingers' p99 under 20 ms next to
# a bulk pipeliner): benchmark figures, enforced here only.  The default
# `make integration` run prints them without a limit.
bench-latency: all
	STAMPD_BIN=$(CURDIR)/$(BUILD)/stampd STAMPD_LATENCY_LIMITS=1 \
	  $(PYTHON) -m pytest -q -s tests/integration/test_rel_load.py \
	  -k "slowloris or fairness"

# The long runs, not in `make test`; under an hour on a 2-core machine:
#   soak          LONG_SOAK_SECONDS (20 min) of 20,000 connections x 1 line/s,
#                 RSS and descriptors of each worker flat (test_rel_soak.py)
#   test-netns    5% TCP packet loss each way in a network namespace, no
#                 reply lost or corrupted (root; ~1 min)
#   fuzz-long     the corpus and crasher replay, then every libFuzzer target
#                 for LONG_FUZZ_SECONDS (5 min each: 25 min for five targets)
#   test-kqueue-rel  the reliability files against the kqueue backend
#                 (emulated on Linux; a few minutes)
# Each piece is a target of its own and stops the run at its first failure.
LONG_SOAK_SECONDS ?= 1200
LONG_FUZZ_SECONDS ?= 300

test-long:
	$(MAKE) --no-print-directory soak SOAK_SECONDS=$(LONG_SOAK_SECONDS)
	$(MAKE) --no-print-directory test-netns
	$(MAKE) --no-print-directory fuzz-long SECONDS=$(LONG_FUZZ_SECONDS)
	$(MAKE) --no-print-directory test-kqueue-rel

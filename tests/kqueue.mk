# tests/kqueue.mk - proving the kqueue backend as far as a Linux box allows.
#
#   make test-poller   the poller.h conformance suite (tests/unit/test_poller.c)
#                      on every backend this machine can run: epoll natively and
#                      kqueue over the test-only emulation (tests/kqueue/), the
#                      latter also without EV_RECEIPT (as on older BSDs)
#   make test-kqueue   test-poller, the emulation's own man-page checks, then
#                      the server built against the emulation (build-kq/stampd,
#                      start-up line "(kqueue)") through the integration suite;
#                      the load client stampbench stays an epoll build (it is
#                      threaded, the emulation is not thread-safe); then a
#                      -DCOMPAT_PORTABLE build (macOS fallbacks) through a
#                      subset of it
#   make check-kqueue-headers   compile src/poller_kqueue.c -fsyntax-only
#                      against real BSD declarations, where the machine has them
#
# The emulation is linked only into these test builds (EXTRA_OBJS), never
# into $(BUILD)/stampd of a normal `make`.  On a BSD the native kqueue is
# used and the emulation is not built.

KQ_BUILD       ?= build-kq
KQ_EPOLL_BUILD ?= build-kq-epoll
KQ_EMU_FLAGS    = EXTRA_CFLAGS="-Itests/kqueue/include" \
                  EXTRA_OBJS=$(KQ_BUILD)/kqueue_emu.o
# Integration suites run against the emulated build.  By default (in make
# test): the suites that drive the poller hardest (the protocols, limits,
# listeners, processes and the system call faults), less the idle-memory
# figures, which the emulation distorts (it keeps each fd's
# kevents in the process, ~100 bytes a connection, where a kernel keeps
# them out of the RSS), and the 8-second UDP burst.  HAProxy's PROXY-header health checks are not: under the emulation its
# health-check connections were once not all counted within 20 s (it
# passes alone);
# test_tools.py passes too (its stampbench tests take the epoll client from
# STAMPBENCH_BIN) but is left out for time.  Widen or narrow with e.g.
# `make test-kqueue KQ_PYTEST_ARGS="tests/integration -k 'not rss_per_idle'"`;
# the load files test_rel_*.py have their own target (test-kqueue-rel).
KQ_PYTEST_ARGS ?= tests/integration/test_smoke.py \
                  tests/integration/test_line_protocol.py \
                  tests/integration/test_limits.py \
                  tests/integration/test_http.py \
                  tests/integration/test_udp.py \
                  tests/integration/test_chunk.py \
                  tests/integration/test_proxy.py \
                  tests/integration/test_listeners.py \
                  tests/integration/test_processes.py \
                  tests/integration/test_fault_syscalls.py \
                  -k "not test_rss_per_idle and not test_burst_all_accounted"
# The macOS fallbacks (accept + fcntl, socket/pipe + fcntl, one listener
# shared by all workers) forced on Linux with -DCOMPAT_PORTABLE, over the
# emulated kqueue: the process, line-protocol and smoke tests (~20 s).
KQ_PORTABLE_BUILD ?= build-kq-portable
KQ_PORTABLE_TESTS ?= tests/integration/test_smoke.py \
                     tests/integration/test_processes.py \
                     tests/integration/test_line_protocol.py
KQ_CAN_EMULATE := $(wildcard /usr/include/x86_64-linux-gnu/sys/epoll.h \
                             /usr/include/sys/epoll.h)

TEST_TARGETS += test-kqueue

.PHONY: test-poller test-kqueue check-kqueue-headers kq-poller-run

# The conformance suite links the backend chosen by POLLER (plus EXTRA_OBJS:
# the emulation in the kqueue test build).  This explicit rule overrides the
# generic unit-test rule, which links only the pure library.
$(BUILD)/tests/test_poller: tests/unit/test_poller.c \
                            $(BUILD)/obj/poller_$(POLLER).o $(EXTRA_OBJS) \
                            $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/obj/poller_$(POLLER).o \
	  $(EXTRA_OBJS) -lcmocka

$(BUILD)/kqueue_emu.o: tests/kqueue/kqueue_emu.c \
                       tests/kqueue/include/sys/event.h $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/test_kqueue_emu: tests/kqueue/test_kqueue_emu.c \
                                $(BUILD)/kqueue_emu.o $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/kqueue_emu.o -lcmocka

kq-poller-run: $(BUILD)/tests/test_poller
	$(BUILD)/tests/test_poller

ifneq ($(KQ_CAN_EMULATE),)
test-poller:
	$(MAKE) --no-print-directory BUILD=$(KQ_EPOLL_BUILD) POLLER=epoll kq-poller-run
	$(MAKE) --no-print-directory BUILD=$(KQ_BUILD) POLLER=kqueue $(KQ_EMU_FLAGS) \
	  kq-poller-run $(KQ_BUILD)/tests/test_kqueue_emu
	$(KQ_BUILD)/tests/test_kqueue_emu
	$(MAKE) --no-print-directory BUILD=$(KQ_BUILD)-norcpt POLLER=kqueue \
	  EXTRA_CFLAGS="-Itests/kqueue/include -DPOLLER_KQUEUE_NO_RECEIPT" \
	  EXTRA_OBJS=$(KQ_BUILD)-norcpt/kqueue_emu.o kq-poller-run

test-kqueue: test-poller
	$(MAKE) --no-print-directory BUILD=$(KQ_BUILD) POLLER=kqueue $(KQ_EMU_FLAGS) \
	  $(KQ_BUILD)/stampd $(TOOLS_BIN:$(BUILD)/%=$(KQ_BUILD)/%)
	$(MAKE) --no-print-directory BUILD=$(KQ_EPOLL_BUILD) POLLER=epoll \
	  $(BENCH_BIN:$(BUILD)/%=$(KQ_EPOLL_BUILD)/%)
	STAMPD_BIN=$(CURDIR)/$(KQ_BUILD)/stampd STAMPD_POLLER=kqueue \
	  STAMPBENCH_BIN=$(CURDIR)/$(KQ_EPOLL_BUILD)/stampbench \
	  $(PYTHON) -m pytest -q -p no:cacheprovider $(KQ_PYTEST_ARGS)
	$(MAKE) --no-print-directory BUILD=$(KQ_PORTABLE_BUILD) POLLER=kqueue \
	  EXTRA_CFLAGS="-Itests/kqueue/include -DCOMPAT_PORTABLE" \
	  EXTRA_OBJS=$(KQ_PORTABLE_BUILD)/kqueue_emu.o $(KQ_PORTABLE_BUILD)/stampd
	STAMPD_BIN=$(CURDIR)/$(KQ_PORTABLE_BUILD)/stampd STAMPD_POLLER=kqueue \
	  $(PYTHON) -m pytest -q -p no:cacheprovider $(KQ_PORTABLE_TESTS)
else
test-poller:
	$(MAKE) --no-print-directory BUILD=$(KQ_BUILD) POLLER=kqueue kq-poller-run

test-kqueue: test-poller
endif

# Real BSD declarations: Debian 12 ships no libkqueue-dev and no FreeBSD
# sysroot, so this checks only when one of these headers exists (on a BSD,
# /usr/include/sys/event.h itself).
KQ_REAL_HEADER := $(firstword $(wildcard /usr/include/sys/event.h \
                    /usr/include/kqueue/sys/event.h $(KQ_SYSROOT)/usr/include/sys/event.h))
check-kqueue-headers:
ifneq ($(KQ_REAL_HEADER),)
	$(CC) $(filter-out -DPOLLER_% -MMD -MP,$(CFLAGS)) -DPOLLER_kqueue \
	  -I$(patsubst %/sys/event.h,%,$(KQ_REAL_HEADER)) -fsyntax-only \
	  src/poller_kqueue.c
else
	@echo "check-kqueue-headers: no real <sys/event.h> on this machine (Debian 12 has no libkqueue-dev); skipped"
endif

# The reliability files (tests/integration/test_rel_*.py: slowloris, a bulk
# pipeliner next to pingers, 10k connections stopped gracefully, worker
# crashes under load, abuse, protocol mixes) against the server built on the
# emulated kqueue backend; stampbench stays an epoll build.  Part of
# `make test-long` (tests/reliability.mk), a few minutes.
KQ_REL_TESTS ?= $(filter-out %/test_rel_util.py,$(wildcard tests/integration/test_rel_*.py))
KQ_REL_PYTEST_ARGS ?=

.PHONY: test-kqueue-rel

test-kqueue-rel:
	$(MAKE) --no-print-directory BUILD=$(KQ_BUILD) POLLER=kqueue $(KQ_EMU_FLAGS) \
	  $(KQ_BUILD)/stampd
	$(MAKE) --no-print-directory BUILD=$(KQ_EPOLL_BUILD) POLLER=epoll \
	  $(BENCH_BIN:$(BUILD)/%=$(KQ_EPOLL_BUILD)/%)
	STAMPD_BIN=$(CURDIR)/$(KQ_BUILD)/stampd STAMPD_POLLER=kqueue \
	  STAMPBENCH_BIN=$(CURDIR)/$(KQ_EPOLL_BUILD)/stampbench \
	  $(PYTHON) -m pytest -q -p no:cacheprovider $(KQ_REL_TESTS) $(KQ_REL_PYTEST_ARGS)

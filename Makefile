# stampd - one Makefile for the server, its tools, tests and benchmarks.
#
#   make            build build/stampd, stampctl, stampcli, stampbench (-O2, jemalloc)
#   make run        install what building and running need, build, run on the defaults
#   make test       install the test and benchmark tools too, build, run every test
#   make install    install into $(DESTDIR)$(PREFIX) (PREFIX=/usr/local); make uninstall
#   make asan       build build-asan/stampd with ASan+UBSan (libc malloc)
#   make clean      remove every build tree (build, build-*)
#   make MALLOC=libc    build without jemalloc
#   make POLLER=epoll|kqueue   force a poller backend
#   make CFLAGS=...     flags added after the project's (which always apply)

CC      ?= cc
BUILD   ?= build
MALLOC  ?= jemalloc
SAN     ?=
PYTHON  ?= /usr/bin/python3
ifeq ($(origin POLLER), undefined)
  POLLER := $(if $(wildcard /usr/include/sys/event.h),kqueue,epoll)
endif

WARN    = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
          -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wvla

# The project's flags are OPTIMIZE (-O2 -g; -O1 -g with SAN=1) and
# STAMPD_CFLAGS (add to it, here or in a sub-makefile).  CFLAGS is the user's,
# from the command line or the environment: it is added last, so it wins
# where the two conflict (`make CFLAGS=-O0`) and cannot drop the include
# paths or the warnings.  The user's value is captured once and handed to
# recursive makes, which therefore never see the project's flags twice.
OPTIMIZE = -O2 -g
ifeq ($(origin STAMPD_USER_CFLAGS), undefined)
  STAMPD_USER_CFLAGS := $(CFLAGS)
endif
export STAMPD_USER_CFLAGS
STAMPD_CFLAGS = -std=gnu11 $(WARN) -Iinclude -D_GNU_SOURCE -MMD -MP \
                -fno-strict-aliasing -DPOLLER_$(POLLER)
override CFLAGS = $(OPTIMIZE) $(STAMPD_CFLAGS) $(STAMPD_USER_CFLAGS)
LDLIBS  =
# Hooks for sub-builds (tests/kqueue.mk builds the server against a test-only
# kqueue emulation this way): extra flags and objects, never set by default.
STAMPD_CFLAGS += $(EXTRA_CFLAGS)

ifeq ($(SAN),1)
  OPTIMIZE       = -O1 -g
  STAMPD_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
                   -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
  MALLOC  := libc
endif
ifeq ($(MALLOC),jemalloc)
  STAMPD_CFLAGS += -DUSE_JEMALLOC
  LDLIBS  += -ljemalloc
endif
LDLIBS += -lhttp_parser -lm

# Pure modules (no sockets): unit-tested, and linked by the tools and the
# benchmark client too.  The reactor modules need the kernel.  One file a
# line, sorted, so that additions merge cleanly.
PURE_SRC = \
  src/addr.c \
  src/check.c \
  src/clock.c \
  src/clock_edge.c \
  src/clocksync.c \
  src/cpus.c \
  src/http.c \
  src/inherit.c \
  src/line.c \
  src/log.c \
  src/metrics.c \
  src/opchannel.c \
  src/opts.c \
  src/proxy.c \
  src/refusal.c \
  src/ratelimit.c \
  src/reply.c \
  src/ring.c \
  src/sbuf.c \
  src/sdnotify.c
CORE_SRC = \
  src/admin.c \
  src/checkconf.c \
  src/compat.c \
  src/config.c \
  src/clientlog.c \
  src/conn.c \
  src/conn_client.c \
  src/console.c \
  src/handoff.c \
  src/master.c \
  src/net.c \
  src/operator.c \
  src/pidfile.c \
  src/priority.c \
  src/privs.c \
  src/procinfo.c \
  src/proctitle.c \
  src/reactor.c \
  src/stats.c \
  src/udp.c \
  src/worker.c \
  src/poller_$(POLLER).c
PURE_OBJ = $(PURE_SRC:src/%.c=$(BUILD)/obj/%.o)
CORE_OBJ = $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
PURE_LIB = $(BUILD)/libstampd_pure.a
LIB      = $(BUILD)/libstampd.a

UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all asan run test unit integration integration-asan deps test-deps \
        clean lint
.DEFAULT_GOAL := all

# Sub-makefiles: the operator tools, the benchmark suite, the fuzzers, the
# kqueue emulation tests, the reliability runs, install and uninstall.  They
# see the variables above.
TEST_TARGETS =
EXTRA_DEPS =
-include tools/tools.mk bench/bench.mk tests/fuzz/fuzz.mk tests/kqueue.mk \
         tests/reliability.mk mk/install.mk
# tests/integration/test_health.py parses docs/scale-out.md's Kubernetes
# example and runs HAProxy against /readyz.
EXTRA_DEPS += python3-yaml haproxy

all: $(BUILD)/stampd $(TOOLS_BIN) $(BENCH_BIN)

# Rebuild everything when the flags change.
$(BUILD)/.flags: FORCE
	@mkdir -p $(@D)
	@echo '$(CC) $(CFLAGS) $(LDFLAGS) $(LDLIBS)' | cmp -s - $@ || \
	  echo '$(CC) $(CFLAGS) $(LDFLAGS) $(LDLIBS)' > $@
FORCE:

$(BUILD)/obj/%.o: src/%.c $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(PURE_LIB): $(PURE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(LIB): $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/stampd: $(BUILD)/obj/main.o $(LIB) $(PURE_LIB) $(EXTRA_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(PURE_LIB) $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(PURE_LIB) $(LDLIBS) -lcmocka

asan:
	$(MAKE) BUILD=build-asan SAN=1 all

# --- set-up on a fresh Debian 12 machine -----------------------------------
# DEPS: what building and running need (`make run`).  TEST_DEPS: the test and
# benchmark tools (`make test`); sub-makefiles add theirs to EXTRA_DEPS.
# One package a line, sorted, so that additions merge cleanly.
DEPS = \
  gcc \
  libc6-dev \
  libedit-dev \
  libhttp-parser-dev \
  libjemalloc-dev \
  make \
  pkg-config
TEST_DEPS = \
  cppcheck \
  curl \
  groff-base \
  haproxy \
  iproute2 \
  libcmocka-dev \
  man-db \
  netcat-openbsd \
  procps \
  python3 \
  python3-pytest \
  systemd \
  tzdata \
  wrk \
  $(EXTRA_DEPS)

# $(call apt_install,PACKAGES): install each package that is missing (as
# dpkg-query sees it) and nothing else; `apt-get update` runs only when
# something must be installed.
define apt_install
	@missing=""; for p in $(sort $(1)); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	    || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root to install:$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call apt_install,$(DEPS))

test-deps:
	$(call apt_install,$(DEPS) $(TEST_DEPS))

# The packages first, then the build (never in parallel with apt-get).
# Started as root, stampd runs its workers only as the user it is told.
run: deps
	$(MAKE) all
	./$(BUILD)/stampd $(if $(filter 0,$(shell id -u)),--user nobody)

# --- tests -------------------------------------------------------------------
unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# The integration suite also checks the benchmark-only binaries that live
# next to the server (tests/integration/test_bench_floors.py).
integration: all bench-bin
	STAMPD_BIN=$(CURDIR)/$(BUILD)/stampd $(PYTHON) -m pytest -q tests/integration

# Under the sanitizers, every suite but the three that exercise other
# programs (Prometheus, the install tree, the benchmark floors): the
# server's side of those is covered by the suites that remain.
ASAN_PYTEST_ARGS ?= tests/integration \
  --ignore=tests/integration/test_prometheus.py \
  --ignore=tests/integration/test_install.py \
  --ignore=tests/integration/test_bench_floors.py
integration-asan:
	$(MAKE) BUILD=build-asan SAN=1 all bench-bin
	STAMPD_BIN=$(CURDIR)/build-asan/stampd STAMPD_SANITIZED=1 \
	  $(PYTHON) -m pytest -q $(ASAN_PYTEST_ARGS)

# Sub-makefiles append their suites to TEST_TARGETS (and packages to
# EXTRA_DEPS); `make test` runs them after the core suites.
test: test-deps
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) integration-asan
	@set -e; for t in $(TEST_TARGETS); do $(MAKE) $$t; done

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	  --inline-suppr -Iinclude -D_GNU_SOURCE src

# Every build tree is build/ or build-*/ (asan, fuzz, kqueue, fault,
# valgrind builds), plus $(BUILD) wherever it was pointed.
clean:
	rm -rf build build-* $(filter-out build build-%,$(BUILD))
-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/tests/*.d)

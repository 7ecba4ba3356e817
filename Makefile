# stampd - one Makefile for the server, its tools, tests and benchmarks.
#
#   make            build build/stampd (jemalloc, -O2)
#   make run        install what is missing, build, run on the defaults
#   make test       install what is missing, build, run every test
#   make asan       build build-asan/stampd with ASan+UBSan (libc malloc)
#   make MALLOC=libc    build without jemalloc
#   make POLLER=epoll|kqueue   force a poller backend

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
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -Iinclude -D_GNU_SOURCE -MMD -MP \
           -fno-strict-aliasing -DPOLLER_$(POLLER)
LDLIBS  =
# Hooks for sub-builds (tests/kqueue.mk builds the server against a test-only
# kqueue emulation this way): extra flags and objects, never set by default.
CFLAGS  += $(EXTRA_CFLAGS)

ifeq ($(SAN),1)
  CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
  MALLOC  := libc
endif
ifeq ($(MALLOC),jemalloc)
  CFLAGS  += -DUSE_JEMALLOC
  LDLIBS  += -ljemalloc
endif
LDLIBS += -lhttp_parser -lm

# Pure modules (no sockets): unit-tested, and linked by the tools and the
# benchmark client too.  The reactor modules need the kernel.
PURE_SRC = src/addr.c src/check.c src/clock.c src/line.c src/log.c src/opts.c \
           src/reply.c src/ring.c src/sbuf.c src/metrics.c src/http.c
PURE_SRC += src/proxy.c src/ratelimit.c src/sdnotify.c src/clocksync.c
CORE_SRC = src/config.c src/master.c src/net.c src/stats.c src/worker.c src/conn.c \
           src/udp.c src/compat.c src/admin.c src/procinfo.c \
           src/checkconf.c src/handoff.c src/inherit.c src/pidfile.c \
           src/privs.c src/proctitle.c src/sysd.c \
           src/poller_$(POLLER).c
PURE_OBJ = $(PURE_SRC:src/%.c=$(BUILD)/obj/%.o)
CORE_OBJ = $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
PURE_LIB = $(BUILD)/libstampd_pure.a
LIB      = $(BUILD)/libstampd.a

UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all asan run test unit integration integration-asan deps clean lint
.DEFAULT_GOAL := all

# Sub-makefiles: the operator tools, the benchmark suite, the fuzzers and the
# kqueue emulation tests.  They see the variables above.
TEST_TARGETS =
EXTRA_DEPS =
-include tools/tools.mk bench/bench.mk tests/fuzz/fuzz.mk tests/kqueue.mk \
         tests/reliability.mk
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
# Each package is installed only if missing; `apt-get update` runs only when
# something must be installed.
DEPS = gcc make libc6-dev libjemalloc-dev libcmocka-dev libhttp-parser-dev \
       wrk pkg-config python3 python3-pytest procps iproute2 netcat-openbsd \
       tzdata cppcheck curl $(EXTRA_DEPS)
deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	    || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root to install:$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing; \
	fi

run: deps all
	./$(BUILD)/stampd

# --- tests -------------------------------------------------------------------
unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

integration: all
	STAMPD_BIN=$(CURDIR)/$(BUILD)/stampd $(PYTHON) -m pytest -q tests/integration

integration-asan: asan
	STAMPD_BIN=$(CURDIR)/build-asan/stampd STAMPD_SANITIZED=1 \
	  $(PYTHON) -m pytest -q tests/integration

# Sub-makefiles append their suites to TEST_TARGETS (and packages to
# EXTRA_DEPS); `make test` runs them after the core suites.
test: deps
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) integration-asan
	@set -e; for t in $(TEST_TARGETS); do $(MAKE) $$t; done

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	  --inline-suppr -Iinclude -D_GNU_SOURCE src

clean:
	rm -rf build build-asan


-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/tests/*.d)

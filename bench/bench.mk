# bench/bench.mk - stampbench, the baseline loop and the comparison suite.
#
#   make                  builds $(BUILD)/stampbench (the load client is a tool)
#   make bench-bin        builds the benchmark-only programs: the baseline loop
#                         and the HTTP floors (the io_uring one needs liburing)
#   make bench            the suite (< 20 min): results in bench/results/
#   make bench-quick      one short repetition of everything (a few minutes)
#   make bench-scale      40,000 connections, a line per second each, 60 s
#   make bench-c1m        1,000,000 connections (C1M_CONNS=N for fewer)
#   make bench-saturation the tail at saturation against the baseline
# Include-d by the top Makefile, which defines CC, CFLAGS, BUILD, LIB, PURE_LIB.

BENCH_OBJ = $(BUILD)/bench/sbcore.o
BENCH_BIN = $(BUILD)/stampbench
BENCH_ONLY_BIN = $(BUILD)/bench-baseline $(BUILD)/bench-http-floor
ifeq ($(shell uname -s),Linux)
  BENCH_ONLY_BIN += $(BUILD)/bench-http-floor-uring
endif
BENCH_SUITE = $(PYTHON) bench/suite.py --build $(BUILD)
EXTRA_DEPS += redis-server memcached gnuplot-nox linux-perf valgrind \
              util-linux python3 nginx-light liburing-dev

$(BUILD)/bench/%.o: bench/%.c $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Ibench -c -o $@ $<

$(BUILD)/bench/baseline/%.o: bench/baseline/%.c $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

# The client links the server's poller backend (libstampd.a) and the pure
# clock formatters, address parser and text buffer (libstampd_pure.a).
$(BUILD)/stampbench: $(BUILD)/bench/stampbench.o $(BENCH_OBJ) $(LIB) $(PURE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lpthread

# The baseline is self-contained on purpose: nothing of stampd in it.
$(BUILD)/bench-baseline: $(BUILD)/bench/baseline/baseline.o
	$(CC) $(LDFLAGS) -o $@ $^

# The HTTP floors (bench/http.sh): the thinnest epoll and io_uring
# responders, self-contained like the baseline.
$(BUILD)/bench-http-floor: $(BUILD)/bench/baseline/http_floor.o
	$(CC) $(LDFLAGS) -o $@ $^
$(BUILD)/bench-http-floor-uring: $(BUILD)/bench/baseline/http_floor_uring.o
	$(CC) $(LDFLAGS) -o $@ $^ -luring

# Unit test of the pure verification code (the generic rule in the top
# Makefile links only libstampd_pure.a).
$(BUILD)/tests/test_bench_sbcore: tests/unit/test_bench_sbcore.c $(BENCH_OBJ) $(PURE_LIB) $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Ibench $(LDFLAGS) -o $@ $< $(BENCH_OBJ) $(PURE_LIB) $(LDLIBS) -lcmocka

.PHONY: bench bench-bin bench-quick bench-scale bench-smoke
bench-bin: $(BENCH_ONLY_BIN)
bench: all bench-bin
	$(BENCH_SUITE)
bench-quick: all bench-bin
	$(BENCH_SUITE) --quick
bench-scale: all bench-bin
	$(BENCH_SUITE) --only scale

# Part of `make test`: a few seconds of stampbench against stampd and the
# baseline, every reply verified (exit status non-zero on any mismatch).
bench-smoke: all bench-bin
	$(BENCH_SUITE) --smoke
TEST_TARGETS += bench-smoke

-include $(wildcard $(BUILD)/bench/*.d $(BUILD)/bench/baseline/*.d)

# One million concurrent connections (< 10 min; needs about 7 GiB of free
# memory and root for the kernel settings it raises and restores):
#   make bench-c1m                 results in bench/results/c1m/
#   C1M_CONNS=100000 make bench-c1m    a smaller run
# The tail at saturation, stampd against the baseline (4 workers each,
# 40,000 connections, rising open-loop rate): bench/results/saturation/.
.PHONY: bench-c1m bench-saturation
bench-c1m: all bench-bin
	$(PYTHON) bench/c1m.py --build $(BUILD)
bench-saturation: all bench-bin
	$(PYTHON) bench/saturation.py --build $(BUILD)

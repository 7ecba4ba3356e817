# tests/fuzz/fuzz.mk - libFuzzer targets (clang-14, ASan + UBSan).
#
#   make fuzz                   build every target into $(FUZZ_BUILD)
#   make fuzz-replay            replay the committed corpora and crashers (a
#                               gate: any failing input fails make)
#   make fuzz-run               fuzz-replay, then fuzz each target for
#                               FUZZ_SECONDS from corpus + crashers (in make test)
#   make fuzz-long SECONDS=600  fuzz each target for SECONDS
#
# Corpora live in tests/fuzz/corpus/<target>/ (seeds, committed) and every
# input that ever crashed a target is committed in tests/fuzz/crashers/<target>/
# so that it is replayed forever.  New inputs found by a run go to
# $(FUZZ_BUILD)/work/<target>/, never into the committed corpus; copy the
# interesting ones in by hand (`-merge=1` keeps only the ones adding coverage).

FUZZ_CC      ?= clang-14
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 3
SECONDS      ?= 600
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS   = -g -O1 -fno-omit-frame-pointer -std=gnu11 $(WARN) -Iinclude \
                -D_GNU_SOURCE -DPOLLER_$(POLLER) -fno-strict-aliasing \
                $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_TARGETS  = $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN      = $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)
FUZZ_LIBOBJ   = $(patsubst src/%.c,$(FUZZ_BUILD)/obj/%.o,$(PURE_SRC) $(CORE_SRC))
FUZZ_OPTS     = -rss_limit_mb=2048 -timeout=10 -print_final_stats=1

EXTRA_DEPS   += clang-14 libclang-rt-14-dev
TEST_TARGETS += fuzz-run

.PHONY: fuzz fuzz-replay fuzz-run fuzz-long

fuzz: $(FUZZ_BIN)

$(FUZZ_BUILD)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/libfuzz.a: $(FUZZ_LIBOBJ)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libfuzz.a
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -fsanitize=fuzzer -o $@ $< \
	  $(FUZZ_BUILD)/libfuzz.a -lhttp_parser -lm

# The replay is a gate: every committed seed and every committed crasher of
# a target runs once, and any failure (crash, sanitizer report, oracle
# abort, timeout) fails make with the tail of the log.  Crashers run one file
# at a time, so the log names the one that failed.  A crasher lives under the
# target it crashed; a file in tests/fuzz/crashers/ outside a target's
# directory fails the replay (nothing would ever run it).
define fuzz_replay_one
	@mkdir -p $(FUZZ_BUILD)/work/$(1) $(FUZZ_BUILD)/artifacts/$(1) \
	  tests/fuzz/corpus/$(1) tests/fuzz/crashers/$(1)
	@echo "== $(1): replay $(words $(wildcard tests/fuzz/corpus/$(1)/*)) seeds, $(words $(wildcard tests/fuzz/crashers/$(1)/*)) crashers"
	@$(FUZZ_BUILD)/$(1) -runs=0 $(FUZZ_OPTS) \
	  -artifact_prefix=$(FUZZ_BUILD)/artifacts/$(1)/ tests/fuzz/corpus/$(1) \
	  > $(FUZZ_BUILD)/$(1).replay.log 2>&1 || \
	  { tail -60 $(FUZZ_BUILD)/$(1).replay.log; echo "$(1): a committed seed fails"; exit 1; }
	@set -e; for f in $(wildcard tests/fuzz/crashers/$(1)/*); do \
	  $(FUZZ_BUILD)/$(1) $(FUZZ_OPTS) -artifact_prefix=$(FUZZ_BUILD)/artifacts/$(1)/ \
	    "$$f" > $(FUZZ_BUILD)/$(1).replay.log 2>&1 || \
	  { tail -60 $(FUZZ_BUILD)/$(1).replay.log; echo "$(1): committed crasher $$f fails again"; exit 1; }; \
	done

endef

# Explore for a bounded time from a scratch copy so the committed corpus
# never changes under git (libFuzzer writes new inputs to the first
# directory only); the crashers are part of the starting corpus, so the
# search starts from every input that ever broke the target.
define fuzz_one
	@echo "== $(1): fuzz $(2) s"
	@$(FUZZ_BUILD)/$(1) $(FUZZ_OPTS) -max_total_time=$(2) \
	  -artifact_prefix=$(FUZZ_BUILD)/artifacts/$(1)/ \
	  $(FUZZ_BUILD)/work/$(1) tests/fuzz/corpus/$(1) tests/fuzz/crashers/$(1) \
	  > $(FUZZ_BUILD)/$(1).log 2>&1 || \
	  { tail -60 $(FUZZ_BUILD)/$(1).log; echo "$(1): crash input in $(FUZZ_BUILD)/artifacts/$(1)/"; exit 1; }
	@grep -E '^#[0-9]+.*(DONE|pulse)' $(FUZZ_BUILD)/$(1).log | tail -1
	@grep -E 'stat::number_of_executed_units|stat::peak_rss' $(FUZZ_BUILD)/$(1).log

endef

FUZZ_STRAY = $(filter-out $(FUZZ_TARGETS:%=tests/fuzz/crashers/%),$(wildcard tests/fuzz/crashers/*))

fuzz-replay: fuzz
	@test -z "$(FUZZ_STRAY)" || \
	  { echo "fuzz-replay: no target named $(FUZZ_STRAY)"; exit 1; }
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_replay_one,$(t)))

fuzz-run: fuzz-replay
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_one,$(t),$(FUZZ_SECONDS)))

fuzz-long: fuzz-replay
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_one,$(t),$(SECONDS)))

-include $(wildcard $(FUZZ_BUILD)/obj/*.d $(FUZZ_BUILD)/*.d)

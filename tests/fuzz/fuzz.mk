# tests/fuzz/fuzz.mk - libFuzzer targets (clang-14, ASan + UBSan).
#
#   make fuzz                   build every target into $(FUZZ_BUILD)
#   make fuzz-run               replay the committed corpora and crashers, then
#                               fuzz each target for FUZZ_SECONDS (in make test)
#   make fuzz-long SECONDS=600  fuzz each target for SECONDS
#
# Corpora live in tests/fuzz/corpus/<target>/ (seeds, committed) and every
# input that ever crashed a target is committed in tests/fuzz/crashers/<target>/
# so that it is replayed forever.  New inputs found by a run go to
# $(FUZZ_BUILD)/work/<target>/, never into the committed corpus; copy the
# interesting ones in by hand (`-merge=1` keeps only the ones adding coverage).

FUZZ_CC      ?= clang-14
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 15
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

.PHONY: fuzz fuzz-run fuzz-long

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

# Replay first (every committed input must pass), then explore for a bounded
# time from a scratch copy so the committed corpus never changes under git.
define fuzz_one
	@mkdir -p $(FUZZ_BUILD)/work/$(1) $(FUZZ_BUILD)/artifacts/$(1) \
	  tests/fuzz/corpus/$(1) tests/fuzz/crashers/$(1)
	@echo "== $(1): replay"
	@$(FUZZ_BUILD)/$(1) -runs=0 $(FUZZ_OPTS) tests/fuzz/corpus/$(1) \
	  tests/fuzz/crashers/$(1) 2>&1 | grep -E "^Done" || true
	@echo "== $(1): fuzz $(2) s"
	@$(FUZZ_BUILD)/$(1) $(FUZZ_OPTS) -max_total_time=$(2) \
	  -artifact_prefix=$(FUZZ_BUILD)/artifacts/$(1)/ \
	  $(FUZZ_BUILD)/work/$(1) tests/fuzz/corpus/$(1) \
	  > $(FUZZ_BUILD)/$(1).log 2>&1 || \
	  { tail -60 $(FUZZ_BUILD)/$(1).log; echo "$(1): crash input in $(FUZZ_BUILD)/artifacts/$(1)/"; exit 1; }
	@grep -E '^#[0-9]+.*(DONE|pulse)' $(FUZZ_BUILD)/$(1).log | tail -1
	@grep -E 'stat::number_of_executed_units|stat::peak_rss' $(FUZZ_BUILD)/$(1).log

endef

fuzz-run: fuzz
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_one,$(t),$(FUZZ_SECONDS)))

fuzz-long: fuzz
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_one,$(t),$(SECONDS)))

-include $(wildcard $(FUZZ_BUILD)/obj/*.d $(FUZZ_BUILD)/*.d)

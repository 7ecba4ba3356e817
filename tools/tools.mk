# tools/tools.mk - the operator tools, included by the top Makefile (which
# defines CC, CFLAGS, BUILD, PURE_LIB, LDLIBS).
#
#   stampctl   admin-port client: stats, top, health, metrics, --json, and
#              chat (the operator console; libedit on a terminal)
#   stampcli   line-protocol (and HTTP) client; libedit on a terminal
#
# Their integration tests (tests/integration/test_tools.py,
# test_stampcli_pty.py, test_admin.py) run with `make integration`;
# tests/unit/test_ctl.c and test_cli.c with `make unit`.
# test_admin.py checks /metrics with promtool (Debian: prometheus).

TOOLS_BIN = $(BUILD)/stampctl $(BUILD)/stampcli
EXTRA_DEPS += prometheus

$(BUILD)/obj/tools/%.o: tools/%.c $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itools -c -o $@ $<

$(BUILD)/stampctl: $(BUILD)/obj/tools/stampctl.o $(BUILD)/obj/tools/ctl.o \
                  $(BUILD)/obj/tools/chat.o $(BUILD)/obj/tools/cli.o $(PURE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -ledit

# Line editing and history on a terminal: libedit (Debian: libedit-dev,
# in the top Makefile's DEPS since `make` builds stampcli).
$(BUILD)/stampcli: $(BUILD)/obj/tools/stampcli.o $(BUILD)/obj/tools/cli.o $(PURE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -ledit

# The unit test of ctl.c needs ctl.o besides the pure library: this explicit
# rule takes precedence over the top Makefile's pattern rule.
$(BUILD)/tests/test_ctl: tests/unit/test_ctl.c $(BUILD)/obj/tools/ctl.o $(PURE_LIB) $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itools $(LDFLAGS) -o $@ $< $(BUILD)/obj/tools/ctl.o \
	  $(PURE_LIB) $(LDLIBS) -lcmocka

$(BUILD)/tests/test_cli: tests/unit/test_cli.c $(BUILD)/obj/tools/cli.o $(PURE_LIB) $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itools $(LDFLAGS) -o $@ $< $(BUILD)/obj/tools/cli.o \
	  $(PURE_LIB) $(LDLIBS) -lcmocka

-include $(wildcard $(BUILD)/obj/tools/*.d)

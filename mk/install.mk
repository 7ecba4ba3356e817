# mk/install.mk - make install / make uninstall, included by the top Makefile.
#
#   make install                       into /usr/local (PREFIX)
#   make install PREFIX=/usr DESTDIR=/tmp/pkg   staged, as a package build does
#   make uninstall                     the same PREFIX and DESTDIR remove it all
#
# What goes where (PREFIX=/usr/local):
#   sbin/stampd                        the server (an administrator's command)
#   bin/stampctl, stampcli, stampbench the tools
#   share/man/man8/stampd.8, man1/stampctl.1, stampcli.1, stampbench.1
#   lib/systemd/system/stampd.service, stampd.socket   (when contrib/ has them)
#   share/doc/stampd/LICENSE, README.md, examples/stampd.conf (when present)
# systemd reads units from /usr/local/lib/systemd/system as well as from
# /usr/lib/systemd/system.  Paths under /usr/local/sbin and /usr/local/bin in
# the units are rewritten to SBINDIR and BINDIR, so that they start the
# binaries just installed.

PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/stampd
UNITDIR    ?= $(PREFIX)/lib/systemd/system
INSTALL    ?= install

INSTALL_TOOLS = stampctl stampcli stampbench
INSTALL_MAN1  = man/stampctl.1 man/stampcli.1 man/stampbench.1
INSTALL_MAN8  = man/stampd.8
INSTALL_DOCS  = LICENSE README.md
# Written elsewhere in the tree; installed when present.
INSTALL_UNITS = $(wildcard contrib/systemd/stampd.service contrib/systemd/stampd.socket)
INSTALL_CONF  = $(wildcard contrib/stampd.conf)

.PHONY: install uninstall

# Builds what is missing or stale first (the same BUILD, flags and MALLOC as
# a plain `make`).
install: $(BUILD)/stampd $(INSTALL_TOOLS:%=$(BUILD)/%)
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR)
	$(INSTALL) -m 755 $(BUILD)/stampd $(DESTDIR)$(SBINDIR)/stampd
	$(INSTALL) -m 755 $(INSTALL_TOOLS:%=$(BUILD)/%) $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 644 $(INSTALL_MAN1) $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 644 $(INSTALL_MAN8) $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 644 $(INSTALL_DOCS) $(DESTDIR)$(DOCDIR)/
ifneq ($(INSTALL_CONF),)
	$(INSTALL) -d $(DESTDIR)$(DOCDIR)/examples
	$(INSTALL) -m 644 $(INSTALL_CONF) $(DESTDIR)$(DOCDIR)/examples/
endif
ifneq ($(INSTALL_UNITS),)
	$(INSTALL) -d $(DESTDIR)$(UNITDIR)
	@set -e; for u in $(INSTALL_UNITS); do \
	  echo "install $$u -> $(DESTDIR)$(UNITDIR)/"; \
	  sed -e 's|/usr/local/sbin/|$(SBINDIR)/|g' \
	      -e 's|/usr/local/bin/|$(BINDIR)/|g' $$u \
	    > $(DESTDIR)$(UNITDIR)/$${u##*/}; \
	  chmod 644 $(DESTDIR)$(UNITDIR)/$${u##*/}; \
	done
endif

# Removes every file install may have written, whatever contrib/ holds now,
# then the stampd documentation directories if they are empty.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/stampd \
	  $(INSTALL_TOOLS:%=$(DESTDIR)$(BINDIR)/%) \
	  $(INSTALL_MAN1:man/%=$(DESTDIR)$(MANDIR)/man1/%) \
	  $(INSTALL_MAN8:man/%=$(DESTDIR)$(MANDIR)/man8/%) \
	  $(INSTALL_DOCS:%=$(DESTDIR)$(DOCDIR)/%) \
	  $(DESTDIR)$(DOCDIR)/examples/stampd.conf \
	  $(DESTDIR)$(UNITDIR)/stampd.service $(DESTDIR)$(UNITDIR)/stampd.socket
	@for d in $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR); do \
	  if [ -d $$d ]; then rmdir --ignore-fail-on-non-empty $$d; fi; done

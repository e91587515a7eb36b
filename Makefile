# SPDX-License-Identifier: MIT
# weft - plain make. `make` builds the libraries; `make check` runs every test;
# `make demo` runs the example; `make bench` the benchmarks; V=1 shows commands.
# SAN=address (address+undefined) or SAN=thread builds into build/<san>/.

NAME := weft
# The version is weft.h's: WEFT_VERSION_MAJOR.MINOR.PATCH.
VERSION := $(shell awk '/^\#define WEFT_VERSION_(MAJOR|MINOR|PATCH) / { v = v s $$3; s = "." } END { print v }' include/weft.h)
MAJOR := $(word 1,$(subst ., ,$(VERSION)))
PREFIX ?= /usr/local
prefix ?= $(PREFIX)
libdir ?= $(prefix)/lib
includedir ?= $(prefix)/include
bindir ?= $(prefix)/bin

# Debian packages, each for one reason: hwloc (threads pinned to cores, NUMA),
# jemalloc (per-NUMA result arenas), liburing (the spill file's I/O), xxhash (spill
# checksums), libfabric (a cluster's messages and RMA reads), libsodium (the cluster
# token's handshake), libmicrohttpd (the views served over HTTP), criterion (the
# tests), libudev (hwloc's pkg-config asks for it), pkg-config, gcc and make (the
# build), openmpi-bin (a cluster test starts one with mpirun).
DEPS_PKGS := libhwloc-dev libjemalloc-dev liburing-dev libxxhash-dev libfabric-dev \
	libsodium-dev libcriterion-dev libudev-dev libmicrohttpd-dev pkg-config gcc make \
	openmpi-bin libjs-chart.js chromium fonts-liberation
PKGS := hwloc jemalloc liburing libxxhash libsodium libfabric libmicrohttpd
# A package pkg-config cannot find would leave its flags empty and the compiler to
# fail with puzzles: say which is missing instead (make deps installs them). Not for
# deps, which is what installs them.
ifeq ($(filter deps,$(MAKECMDGOALS)),)
ifneq ($(MAKECMDGOALS),clean)
MISSING_PKGS := $(strip $(foreach p,$(PKGS) criterion,$(if $(shell pkg-config --exists $(p) && echo y),,$(p))))
endif
endif

# Sanitized runs are 5-20x slower: the stress tests divide their counts by this.
ifneq ($(SAN),)
export WEFT_STRESS_SCALE ?= 10
endif

ifeq ($(SAN),address)
B := build/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ALLOC := alloc/sys.c
else ifeq ($(SAN),thread)
B := build/tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan
ALLOC := alloc/sys.c
# Criterion's sandbox cannot map its arena under TSan without this (see the file).
TESTEXTRA := tests/tsan-boxfort.c
else ifeq ($(SAN),)
B := build
SANFLAGS :=
ALLOC := alloc/arena.c
else
$(error SAN must be address, thread or empty)
endif

OPT ?= -O2 -g
# A debug build (DEBUG=1, or OPT=-O0) aborts on a released future or a closed
# client used again; a release build reports it and goes on (core.h, handles).
ifneq ($(DEBUG)$(filter -O0,$(OPT)),)
override CFLAGS += -DWEFT_DEBUG
endif
override CFLAGS += -std=gnu11 $(OPT) -Wall -Wextra -Wno-missing-field-initializers \
	-fPIC -fvisibility=hidden -D_GNU_SOURCE -Iinclude -Iutil -Icore -Ispill -Iproto -Ifabric -Isched -Iworker -Iclient -Iview -MMD -MP $(SANFLAGS) \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# Programs built on the library: task functions take parameters they may not use.
XFLAGS := -Wno-unused-parameter
# libfabric and libsodium are loaded when a process first opens an endpoint
# (fabric/dl.c, fabric/auth.c): their headers, not their libraries, so that a
# program of the embedded engine never loads them.
LIBS := $(shell pkg-config --libs $(filter-out libfabric libsodium libmicrohttpd,$(PKGS)) 2>/dev/null) \
	-lpthread -ldl
override LDFLAGS += $(SANFLAGS)

SRCS := $(wildcard util/*.c core/*.c spill/*.c proto/*.c fabric/*.c sched/*.c worker/*.c client/*.c view/*.c) alloc/acct.c $(ALLOC)
OBJS := $(patsubst %.c,$(B)/%.o,$(SRCS))
A := $(B)/lib$(NAME).a
SO := $(B)/lib$(NAME).so.$(VERSION)
SONAME := lib$(NAME).so.$(MAJOR)

# The test build of the static library: the same sources with their test hooks
# (WEFT_TESTING), which the library that is installed does not carry. Unit tests
# link it.
TB := $(B)/test
TEST_OBJS := $(patsubst %.c,$(TB)/%.o,$(SRCS))
TEST_A := $(TB)/lib$(NAME).a

CRITERION := $(shell pkg-config --libs criterion 2>/dev/null || echo -lcriterion)
UNIT := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(wildcard tests/unit/*.c))
INTEG := $(patsubst tests/integration/%.c,$(B)/tests/integration/%,$(wildcard tests/integration/*.c))
STRESS := $(patsubst tests/stress/%.c,$(B)/tests/stress/%,$(wildcard tests/stress/*.c))
PERF := $(patsubst perf/%.c,$(B)/perf/%,$(wildcard perf/*.c))
TOOLS := $(patsubst tools/%.c,$(B)/tools/%,$(wildcard tools/*.c))
# join/ is built on weft.h alone; tools/weft-join.c is its command line.
JOIN_OBJS := $(patsubst %.c,$(B)/%.o,$(wildcard join/*.c))
$(JOIN_OBJS): override CFLAGS += $(XFLAGS)
JOINTEST := $(patsubst tests/join/%.c,$(B)/tests/join/%,$(wildcard tests/join/*.c))
# Cluster tests start the programs as real processes; tasks.c is their task
# functions, loaded by each worker and linked into the test.
CLUSTERTEST := $(patsubst tests/cluster/%.c,$(B)/tests/cluster/%,$(filter-out tests/cluster/tasks.c,$(wildcard tests/cluster/*.c)))
CLUSTERLIB := $(B)/tests/cluster/libtasks.so

ifneq ($(V),1)
Q := @
QUIET_CC = @echo '  CC     $@';
QUIET_LINK = @echo '  LINK   $@';
QUIET_AR = @echo '  AR     $@';
endif

# Checked before building, after make deps had its chance (check, demo and bench
# run deps first and then make the build in a sub-make, which checks again).
.PHONY: pkgs-present
pkgs-present:
	@missing='$(MISSING_PKGS)'; if [ -n "$$missing" ]; then \
		echo "make: pkg-config cannot find: $$missing; run 'make deps' (apt-get) first" >&2; \
		exit 1; fi

.PHONY: all deps check check-unit check-integration check-stress check-join check-cluster check-concurrency \
	bench fuzz fuzz-seeds demo install uninstall clean
.SUFFIXES:

all: pkgs-present $(A) $(SO) $(B)/lib$(NAME).so $(TOOLS)

# Rebuild everything when the flags change (like Redis' .make-settings).
$(B)/.flags: FORCE
	@mkdir -p $(B)
	@echo '$(CC) $(CFLAGS) $(LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(LDFLAGS)' > $@
FORCE:

$(B)/%.o: %.c $(B)/.flags
	@mkdir -p $(dir $@)
	$(QUIET_CC)$(CC) $(CFLAGS) -c -o $@ $<

# The dashboard's page is built into page.o (.incbin), which the compiler does not
# list among its dependencies.
$(B)/view/page.o $(TB)/view/page.o: view/page.html

$(A): $(OBJS)
	$(QUIET_AR)rm -f $@ && $(AR) rcs $@ $^

$(TB)/%.o: %.c $(B)/.flags
	@mkdir -p $(dir $@)
	$(QUIET_CC)$(CC) $(CFLAGS) -DWEFT_TESTING -c -o $@ $<

$(TEST_A): $(TEST_OBJS)
	$(QUIET_AR)rm -f $@ && $(AR) rcs $@ $^

$(SO): $(OBJS) $(NAME).map
	$(QUIET_LINK)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=$(NAME).map \
		-Wl,-z,defs $(LDFLAGS) -o $@ $(OBJS) $(LIBS)

$(B)/lib$(NAME).so: $(SO)
	$(Q)ln -sf lib$(NAME).so.$(VERSION) $(B)/$(SONAME) && ln -sf $(SONAME) $@

# Unit tests see internal headers and link the test build of the static library.
$(B)/tests/unit/%: tests/unit/%.c $(TEST_A) $(B)/.flags
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(CFLAGS) -DWEFT_TESTING $(XFLAGS) -Ialloc $(LDFLAGS) -o $@ $< $(TESTEXTRA) $(TEST_A) $(LIBS) $(CRITERION)

# Integration and stress tests use weft.h alone and link the shared library.
$(B)/tests/integration/%: tests/integration/%.c $(B)/lib$(NAME).so $(B)/.flags
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(CFLAGS) $(XFLAGS) $(LDFLAGS) -o $@ $< $(TESTEXTRA) -L$(B) -Wl,-rpath,'$$ORIGIN/../..' -l$(NAME) -lpthread $(CRITERION)
# The same sources as libraries, which the workers load when the suite runs against
# a cluster (tests/run.sh's integration:cluster tier): their TASK functions.
INTEGLIB := $(patsubst tests/integration/%.c,$(B)/tests/integration/lib%.so,$(wildcard tests/integration/*.c))
$(B)/tests/integration/lib%.so: tests/integration/%.c $(B)/lib$(NAME).so $(B)/.flags
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(CFLAGS) $(XFLAGS) -shared $(LDFLAGS) -o $@ $< $(CRITERION)
$(B)/tests/stress/%: tests/stress/%.c $(B)/lib$(NAME).so $(B)/.flags
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(CFLAGS) $(XFLAGS) $(LDFLAGS) -o $@ $< $(TESTEXTRA) -L$(B) -Wl,-rpath,'$$ORIGIN/../..' -l$(NAME) -lpthread $(CRITERION)

$(B)/perf/%: perf/%.c perf/bench.h $(JOIN_OBJS) $(A) $(B)/.flags
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(CFLAGS) $(XFLAGS) -Ijoin $(LDFLAGS) -o $@ $< $(JOIN_OBJS) $(A) $(LIBS) -lm

$(B)/tools/%: tools/%.c $(A) $(B)/.flags
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(CFLAGS) $(XFLAGS) $(LDFLAGS) -o $@ $< $(A) $(LIBS) -lm

# Libraries a worker loads (--load) find weft.h's calls in the worker itself: all of
# them, whether the worker calls them or not (the whole archive).
WHOLE = -Wl,--whole-archive $(1) -Wl,--no-whole-archive
$(B)/tools/weft-worker: tools/weft-worker.c $(A) $(B)/.flags
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(CFLAGS) $(XFLAGS) $(LDFLAGS) -rdynamic -o $@ $< $(call WHOLE,$(A)) $(LIBS) -lm

# The worker again with the library's test hooks (a read that fails, on request),
# for the cluster tests that need it.
$(TB)/tools/weft-worker: tools/weft-worker.c $(TEST_A) $(B)/.flags
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(CFLAGS) -DWEFT_TESTING $(XFLAGS) $(LDFLAGS) -rdynamic -o $@ $< $(call WHOLE,$(TEST_A)) $(LIBS) -lm

$(B)/tools/weft-join: tools/weft-join.c $(JOIN_OBJS) $(A) $(B)/.flags
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(CFLAGS) $(XFLAGS) -Ijoin $(LDFLAGS) -o $@ $< $(JOIN_OBJS) $(A) $(LIBS)

$(CLUSTERLIB): tests/cluster/tasks.c $(B)/.flags
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(CFLAGS) $(XFLAGS) -shared $(LDFLAGS) -o $@ $<
$(B)/tests/cluster/%: tests/cluster/%.c tests/cluster/cluster.h $(CLUSTERLIB) $(B)/lib$(NAME).so $(TOOLS) \
		$(TB)/tools/weft-worker $(B)/.flags
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(CFLAGS) $(XFLAGS) $(LDFLAGS) -o $@ $< $(TESTEXTRA) $(CLUSTERLIB) -L$(B) \
		-Wl,-rpath,'$$ORIGIN/../..' -Wl,-rpath,'$$ORIGIN' -l$(NAME) -lpthread $(CRITERION)

# Join tests call join_run() and the two programs; they link the static library.
# weft_submit goes through a wrapper of theirs (helpers.h) that can fail a submit.
$(B)/tests/join/%: tests/join/%.c tests/join/helpers.h $(JOIN_OBJS) $(A) $(B)/.flags
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(CFLAGS) $(XFLAGS) -Ijoin $(LDFLAGS) -Wl,--wrap=weft_submit -o $@ $< \
		$(TESTEXTRA) $(JOIN_OBJS) $(A) $(LIBS) $(CRITERION) -lm

deps:
	@if [ -z "$$WEFT_SKIP_DEPS" ]; then ./tools/deps.sh $(DEPS_PKGS); fi

check: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory $(UNIT) $(INTEG) $(INTEGLIB) $(STRESS) $(JOINTEST) $(CLUSTERTEST)
	$(Q)./tests/run.sh $(B) unit integration integration@cluster stress join cluster
	$(Q)[ -n "$(SAN)" ] || ./tests/install.sh

check-unit: all $(UNIT)
	$(Q)./tests/run.sh $(B) unit
check-integration: all $(INTEG) $(INTEGLIB)
	$(Q)./tests/run.sh $(B) integration integration@cluster
check-stress: all $(STRESS)
	$(Q)./tests/run.sh $(B) stress
check-join: all $(JOINTEST)
	$(Q)./tests/run.sh $(B) join
check-cluster: all $(CLUSTERTEST)
	$(Q)./tests/run.sh $(B) cluster
# The tests whose subject is concurrency, for ThreadSanitizer runs.
check-concurrency: deps
	$(Q)$(MAKE) --no-print-directory all $(UNIT) $(INTEG) $(INTEGLIB) $(STRESS) $(JOINTEST) $(CLUSTERTEST)
	$(Q)WEFT_TEST_FILTER='$(CONCURRENCY_TESTS)' ./tests/run.sh $(B) unit integration integration@cluster stress join cluster
# Every test program but these, whose subject is not concurrency (so a new test is
# in unless it is named here).
# cluster/mpi: its subject is the launcher, and Open MPI's daemons under a sanitized
# worker take longer than the test gives them.
NOT_CONCURRENCY := unit/alloc unit/config cluster/mpi
CONCURRENCY_TESTS = $(filter-out $(NOT_CONCURRENCY),$(patsubst $(B)/tests/%,%,$(UNIT) $(INTEG) $(STRESS) $(JOINTEST) $(CLUSTERTEST)) \
	$(patsubst $(B)/tests/integration/%,integration@cluster/%,$(INTEG)))

$(B)/perf/libclustertasks.so: perf/tasks/cluster.c $(B)/.flags
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(CFLAGS) $(XFLAGS) -shared $(LDFLAGS) -o $@ $<

bench: deps all $(PERF) $(B)/perf/libclustertasks.so
	@if [ -z "$$WEFT_SKIP_DEPS" ]; then ./tools/deps.sh libtbb-dev g++ libfabric-bin; fi
	$(Q)./perf/run.sh $(B)

# libFuzzer targets for every decoder of proto/, each run FUZZ_SECONDS on the seed
# corpus (tests/fuzz/run.sh); fuzz-seeds writes that corpus again when ops change.
FUZZ_SECONDS ?= 60
fuzz: deps
	@if [ -z "$$WEFT_SKIP_DEPS" ]; then ./tools/deps.sh clang libclang-rt-14-dev; fi
	$(Q)./tests/fuzz/run.sh $(B) $(FUZZ_SECONDS)

fuzz-seeds:
	@mkdir -p $(B)/fuzz
	$(Q)$(CC) -Iproto -Iutil tests/fuzz/seeds.c proto/wire.c proto/ops.c proto/parts.c -o $(B)/fuzz/seeds
	$(Q)rm -rf tests/fuzz/corpus && $(B)/fuzz/seeds tests/fuzz/corpus

demo: deps all
	$(Q)./tools/demo.sh $(B)

# The .pc names the prefix, so it is written at each install, never kept.
install: all
	install -d $(DESTDIR)$(includedir) $(DESTDIR)$(libdir)/pkgconfig
	install -m 644 include/weft.h $(DESTDIR)$(includedir)/weft.h
	install -m 755 $(SO) $(DESTDIR)$(libdir)/lib$(NAME).so.$(VERSION)
	ln -sf lib$(NAME).so.$(VERSION) $(DESTDIR)$(libdir)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(libdir)/lib$(NAME).so
	install -m 644 $(A) $(DESTDIR)$(libdir)/lib$(NAME).a
	install -d $(DESTDIR)$(bindir)
	install -m 755 $(B)/tools/weft-join $(B)/tools/weft-gen $(B)/tools/weft-scheduler \
		$(B)/tools/weft-worker $(B)/tools/weft-cluster $(DESTDIR)$(bindir)/
	sed -e 's|@prefix@|$(prefix)|' -e 's|@libdir@|$(libdir)|' \
		-e 's|@includedir@|$(includedir)|' -e 's|@VERSION@|$(VERSION)|' \
		-e 's|@LIBS@|$(LIBS)|' $(NAME).pc.in > $(DESTDIR)$(libdir)/pkgconfig/$(NAME).pc

uninstall:
	rm -f $(DESTDIR)$(includedir)/weft.h $(DESTDIR)$(libdir)/lib$(NAME).so* \
		$(DESTDIR)$(libdir)/lib$(NAME).a $(DESTDIR)$(libdir)/pkgconfig/$(NAME).pc \
		$(DESTDIR)$(bindir)/weft-join $(DESTDIR)$(bindir)/weft-gen \
		$(DESTDIR)$(bindir)/weft-scheduler $(DESTDIR)$(bindir)/weft-worker \
		$(DESTDIR)$(bindir)/weft-cluster

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(JOIN_OBJS:.o=.d) $(TEST_OBJS:.o=.d)

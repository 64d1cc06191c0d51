# XPIO: build, demo, tests, docs, install.
#
#   make            release build (Embedded Swift): build/xpio.so
#   make demo       run examples/demo.lua
#   make test       every test: Swift runtime tests, Lua tests on both
#                   backends and without pidfds, generated conformance
#                   tests, fuzz, faults, soak, lint, docs check
#   make docs       regenerate docs/API.md and types/xpio.lua from Spec/
#   make install    LUA_CDIR/xpio.so, LUA_LDIR/xpio/*.lua and TYPES_DIR/xpio.lua
#                   (DESTDIR, PREFIX)
#   make bench      benchmarks against luv, cqueues, LuaSocket and C
#   make portable   build/portable/xpio.so: the POSIX fallbacks of the
#                   platform layer compiled on Linux (docs/PORTING.md)
#   make test-portable  the whole Lua suite, hostile peers and the OOM sweep
#                   against it, and the checks that it makes none of Linux's
#                   own calls
#   EMBEDDED=0      ordinary Swift with the static standard library (fallback)
#   PORTABLE=1      what `make portable` sets: XPIO_PORTABLE=1 for the build
#   XPIO_PREBUILT=1 use build/xpio.so as it is (never start a Swift build)
#
# LuaRocks (rockspecs/xpio-scm-1.rockspec) runs `make` and `make install`
# with LUA_INCDIR, LUA, LUA_CDIR, LUA_LDIR and PREFIX.

PREFIX   ?= /usr/local
LUA_CDIR ?= $(PREFIX)/lib/lua/5.4
LUA_LDIR ?= $(PREFIX)/share/lua/5.4
# The LuaLS type definitions (types/xpio.lua), for an editor's
# workspace.library: not on LUA_PATH, where require "xpio" would find them.
TYPES_DIR ?= $(PREFIX)/share/xpio/types
LUA      ?= lua5.4
LUA_INCDIR ?= /usr/include/lua5.4
EMBEDDED ?= 1
PORTABLE ?= 0
FUZZ_SECONDS ?= 600

ifeq ($(PORTABLE),1)
SCRATCH  := .build-portable
OUT      := build/portable
else ifeq ($(EMBEDDED),0)
SCRATCH  := .build-full
OUT      := build/full
else
SCRATCH  := .build
OUT      := build
endif

# LuaRocks passes CC and CFLAGS for C modules; the Swift build ignores them.
SWIFT_BUILD := env -u CC -u CFLAGS -u LDFLAGS XPIO_EMBEDDED=$(EMBEDDED) XPIO_PORTABLE=$(PORTABLE) XPIO_LUA_INCDIR=$(LUA_INCDIR) swift build -c release --scratch-path $(SCRATCH)
GEN      := $(SCRATCH)/release/Generator-tool
MODULE   := $(OUT)/xpio.so
TLS_MODULE := $(OUT)/xpio/tls.so
SOURCES  := Package.swift $(wildcard Spec/*.spec Sources/*/*.swift Sources/*/*/*.swift Sources/*/*.c Sources/*/*.h Sources/*/include/*.h Sources/XPIO/exports.map Plugins/*/*.swift)
LUA_ENV  := LUA_CPATH="$(CURDIR)/$(OUT)/?.so;;" LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/Tests/lua/?.lua;;"
BUSTED   := busted --lua=$(LUA) --helper=Tests/lua/helper.lua

.PHONY: portable test-portable rock bench-redis all demo test test-tls-engine test-hostile check-hostile check-asan test-oom check-oom bench-smoke test-swift test-lua test-embedded-fallback lint docs docs-check fuzz check-memory install uninstall bench bench-quick deps test-deps clean

all: $(MODULE) $(TLS_MODULE)

ifeq ($(XPIO_PREBUILT),1)
# LuaRocks' test installs what `make` built, without starting a Swift build.
$(MODULE) $(TLS_MODULE):
	@test -f $@ || { echo "XPIO_PREBUILT=1 but $@ is missing: run make first"; exit 1; }
else
# Stripped of symbols only. The unwind tables (.eh_frame and its index, 30
# of xpio.so's 235 KB) stay: backtrace() walks through XPIO's frames (the
# out-of-memory sweep names them; without the tables it crashed in the
# unwinder), and a Lua built as C++ raises with a C++ throw through the C
# glue's frames.
STRIP := strip --strip-unneeded

$(MODULE): $(SOURCES) | deps
	$(SWIFT_BUILD) --product xpio
	mkdir -p $(OUT)
	$(STRIP) -o $@ $(SCRATCH)/release/libxpio.so

# xpio/tls.so: the TLS engine over OpenSSL 3 (require "xpio.tls").
$(TLS_MODULE): $(SOURCES) | deps
	$(SWIFT_BUILD) --product xpio_tls
	mkdir -p $(OUT)/xpio
	$(STRIP) -o $@ $(SCRATCH)/release/libxpio_tls.so
endif

# lua5.4 and its headers, OpenSSL 3's headers (for xpio/tls.so alone) and
# its command; the package manager runs only when something is missing.
deps:
	@command -v $(LUA) >/dev/null && test -f $(LUA_INCDIR)/lua.h && test -f /usr/include/openssl/ssl.h && command -v openssl >/dev/null || { \
	  echo "installing lua5.4, liblua5.4-dev, libssl-dev and openssl"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua5.4 liblua5.4-dev libssl-dev openssl; }

# The test tools (busted, luacheck), LuaRocks for the install test, the
# libraries the embedding and signal tests drive XPIO from (luv, luaposix),
# and the real software xpio.luasocket is checked with (LuaSocket itself,
# redis-lua against redis-server, LuaSec against openssl s_server).
TEST_PACKAGES := lua-busted lua-check luarocks lua-luv lua-posix lua-socket lua-redis redis-server lua-sec openssl strace
test-deps: deps
	@missing=$$(for p in $(TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

demo: $(MODULE) $(TLS_MODULE)
	$(LUA_ENV) $(LUA) examples/demo.lua

build/gen/conformance_spec.lua build/gen/fuzz_cases.lua: $(MODULE)
	mkdir -p build/gen
	$(GEN) conformance Spec build/gen/conformance_spec.lua
	$(GEN) fuzz Spec build/gen/fuzz_cases.lua

test: test-deps lint test-swift test-tls-engine test-lua test-portable test-oom test-hostile bench-smoke docs-check test-embedded-fallback
	@echo "make test: all passed"

test-swift:
	swift test --no-parallel

# The TLS engine alone, through its C table (Tests/tls/engine_check.c),
# against openssl s_server, s_client and itself.
test-tls-engine: $(TLS_MODULE)
	LIB=$(CURDIR)/$(SCRATCH)/release/libxpio_tls.so Tests/tls/engine_check.sh

test-lua: $(MODULE) $(TLS_MODULE) build/gen/conformance_spec.lua build/gen/fuzz_cases.lua
	@echo "== Lua tests, epoll backend"
	$(LUA_ENV) $(BUSTED) Tests/lua build/gen
	@echo "== Lua tests, poll backend"
	$(LUA_ENV) XPIO_BACKEND=poll $(BUSTED) Tests/lua build/gen
	@echo "== process tests without pidfds (the SIGCHLD self-pipe fallback)"
	$(LUA_ENV) XPIO_NO_PIDFD=1 $(BUSTED) Tests/lua/process_spec.lua Tests/lua/process_files_spec.lua Tests/lua/process_control_spec.lua Tests/lua/sched_spec.lua Tests/lua/examples_spec.lua
	@echo "== the module needs libc alone and loads under env -i"
	! ldd $(MODULE) | grep -Ev 'linux-vdso|libc\.so|ld-linux' | grep .
	! nm -D --undefined-only $(MODULE) | grep -v ' w ' | grep -v '@GLIBC_' | grep -v ' lua' | grep .
	env -i $(LUA) -e "package.cpath='$(CURDIR)/$(OUT)/?.so' assert(require('xpio').socket)"
	@echo "== xpio/tls.so needs OpenSSL and libc alone, and loads beside xpio.so"
	! ldd $(TLS_MODULE) | grep -Ev 'linux-vdso|libc\.so|ld-linux|libssl\.so|libcrypto\.so' | grep .
	env -i $(LUA) -e "package.cpath='$(CURDIR)/$(OUT)/?.so' assert(require('xpio.tls').client)"

# The portable build (docs/PORTING.md): the platform layer's POSIX
# fallbacks compiled on Linux, in a scratch path and directory of its own.
PORTABLE_OUT := build/portable
PORTABLE_MODULE := $(PORTABLE_OUT)/xpio.so
# XPIO_BACKEND=poll and XPIO_NO_PIDFD=1 change nothing in that module (it
# has no epoll and no pidfds): they tell tests that read the environment
# what it does.
PORTABLE_ENV := LUA_CPATH="$(CURDIR)/$(PORTABLE_OUT)/?.so;;" LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/Tests/lua/?.lua;;" \
  XPIO_BACKEND=poll XPIO_NO_PIDFD=1
# Linux's own calls, which the portable module must never make.
LINUX_ONLY_CALLS := epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait epoll_pwait2 \
  pidfd_open pidfd_send_signal pidfd_getfd signalfd signalfd4 eventfd eventfd2 timerfd_create timerfd_settime \
  accept4 pipe2 close_range sendfile sendfile64 splice
# The test files traced with their stacks (Tests/check-portable-calls.sh):
# sockets, names, streams, descriptor passing, processes and their files,
# signals; not the timing-bound ones (the stacks slow every traced call).
STRACE_SPECS := Tests/lua/network_spec.lua Tests/lua/streams_spec.lua Tests/lua/handover_spec.lua \
  Tests/lua/process_spec.lua Tests/lua/process_files_spec.lua Tests/lua/signals_spec.lua

portable:
	$(MAKE) PORTABLE=1 all

test-portable: portable build/gen/conformance_spec.lua build/gen/fuzz_cases.lua test-deps
	@echo "== the portable build: Lua tests (poll, the SIGCHLD pipe, self-pipes)"
	$(PORTABLE_ENV) $(LUA) -e "assert(require('xpio').platform() == 'posix')"
	! ldd $(PORTABLE_MODULE) | grep -Ev 'linux-vdso|libc\.so|ld-linux' | grep .
	$(PORTABLE_ENV) $(BUSTED) Tests/lua build/gen
	@echo "== the portable build: hostile peers, and the out-of-memory sweep"
	$(PORTABLE_ENV) $(PYTHON) Tests/hostile/hostile.py
	$(PORTABLE_ENV) LUA=$(LUA) OOM_DEBUG_LIB=.build-portable/release/libxpio.so Tests/oom/run.sh quick
	@echo "== the portable module links none of Linux's own calls, and makes none"
	$(PORTABLE_ENV) Tests/check-portable-calls.sh $(PORTABLE_MODULE) $(LINUX_ONLY_CALLS) -- $(BUSTED) $(STRACE_SPECS)

lint: test-deps
	luacheck --quiet lua Tests/lua examples bench Tests/hostile

# Out-of-memory sweep (Tests/oom): every allocation of a set of scenarios
# fails in turn, in a small C host with a failing allocator; quick in make
# test, every point and the variants in check-oom.
test-oom: $(MODULE)
	$(LUA_ENV) LUA=$(LUA) OOM_DEBUG_LIB=$(SCRATCH)/release/libxpio.so Tests/oom/run.sh quick
	$(LUA_ENV) LUA=$(LUA) OOM_DEBUG_LIB=$(SCRATCH)/release/libxpio.so Tests/oom/run.sh bugs

check-oom: $(MODULE)
	$(LUA_ENV) LUA=$(LUA) OOM_DEBUG_LIB=$(SCRATCH)/release/libxpio.so Tests/oom/run.sh full

# Hostile peers on Python's socket stack (Tests/hostile): small counts in
# make test (~45 s), large ones in check-hostile (~6 min). The TLS attacks
# (tlsslow, tlstrunc, tlsclient) need xpio/tls.so and the openssl command.
PYTHON ?= python3
test-hostile: $(MODULE) $(TLS_MODULE)
	$(LUA_ENV) $(PYTHON) Tests/hostile/hostile.py
	$(LUA_ENV) $(PYTHON) Tests/hostile/hostile.py --backend poll --only neverread,exhaust,client,tlsslow,tlsclient

check-hostile: $(MODULE) $(TLS_MODULE)
	$(LUA_ENV) $(PYTHON) Tests/hostile/hostile.py --large
	$(LUA_ENV) $(PYTHON) Tests/hostile/hostile.py --large --backend poll --only neverread,exhaust,client,tlsslow,tlsclient

# The committed reference and type files must match the spec.
docs: $(MODULE)
	$(GEN) docs Spec docs/API.md
	$(GEN) types Spec types/xpio.lua

docs-check: $(MODULE)
	mkdir -p build/gen
	$(GEN) docs Spec build/gen/API.md
	$(GEN) types Spec build/gen/xpio.lua
	diff -u docs/API.md build/gen/API.md || { echo "docs/API.md is stale: run make docs"; exit 1; }
	diff -u types/xpio.lua build/gen/xpio.lua || { echo "types/xpio.lua is stale: run make docs"; exit 1; }

# The full-Swift fallback builds and loads (smoke test).
test-embedded-fallback:
	$(MAKE) EMBEDDED=0 all
	$(LUA) -e "package.cpath='$(CURDIR)/build/full/?.so' local x = require('xpio') assert(x.socket('TCP'))"

fuzz: $(MODULE) build/gen/fuzz_cases.lua
	$(LUA_ENV) XPIO_FUZZ_SECONDS=$(FUZZ_SECONDS) $(LUA) Tests/lua/fuzz.lua

check-memory: $(MODULE) build/gen/conformance_spec.lua build/gen/fuzz_cases.lua test-deps
	$(LUA_ENV) Tests/check-memory.sh Tests/lua build/gen

# The whole Lua suite against a full-Swift build with AddressSanitizer (and
# UBSan for the C targets), on both backends and without pidfds.
check-asan: build/gen/conformance_spec.lua build/gen/fuzz_cases.lua test-deps
	Tests/check-asan.sh

install: $(MODULE) $(TLS_MODULE)
	install -d $(DESTDIR)$(LUA_CDIR) $(DESTDIR)$(LUA_LDIR)/xpio/luasocket
	install -m 755 $(MODULE) $(DESTDIR)$(LUA_CDIR)/xpio.so
	install -d $(DESTDIR)$(LUA_CDIR)/xpio
	install -m 755 $(TLS_MODULE) $(DESTDIR)$(LUA_CDIR)/xpio/tls.so
	install -m 644 lua/xpio/*.lua $(DESTDIR)$(LUA_LDIR)/xpio/
	install -m 644 lua/xpio/luasocket/*.lua $(DESTDIR)$(LUA_LDIR)/xpio/luasocket/
	install -d $(DESTDIR)$(TYPES_DIR)
	install -m 644 types/xpio.lua $(DESTDIR)$(TYPES_DIR)/xpio.lua

# A binary rock (build/xpio-scm-1.linux-x86_64.rock) for users without a
# Swift toolchain: `luarocks make` installs what `make install` installs into
# a scratch tree, reusing the modules built here (XPIO_PREBUILT=1), and
# `luarocks pack` packs the installed rock. `luarocks install` of the file
# then needs no build at all (Tests/lua/rock_spec.lua checks it).
ROCK_VERSION := scm-1
ROCK := build/xpio-$(ROCK_VERSION).linux-x86_64.rock
rock: $(MODULE) $(TLS_MODULE)
	rm -rf build/rock $(ROCK)
	mkdir -p build/rock
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u DESTDIR XPIO_PREBUILT=1 \
	  luarocks --lua-version=5.4 --tree $(CURDIR)/build/rock/tree make rockspecs/xpio-$(ROCK_VERSION).rockspec
	cd build && luarocks --lua-version=5.4 --tree $(CURDIR)/build/rock/tree pack xpio $(ROCK_VERSION)
	@echo "$(ROCK)"

uninstall:
	rm -f $(DESTDIR)$(LUA_CDIR)/xpio.so
	rm -rf $(DESTDIR)$(LUA_CDIR)/xpio
	rm -rf $(DESTDIR)$(LUA_LDIR)/xpio
	rm -f $(DESTDIR)$(TYPES_DIR)/xpio.lua

# The portable build's column (docs/PORTING.md) needs `make portable`.
bench: $(MODULE) $(TLS_MODULE) portable
	$(LUA_ENV) bench/run.sh full

bench-quick: $(MODULE) $(TLS_MODULE) portable
	$(LUA_ENV) bench/run.sh quick

# Every benchmark script once with tiny counts, so none of them can rot.
bench-smoke: $(MODULE) $(TLS_MODULE) portable
	$(LUA_ENV) bench/run.sh smoke
	$(LUA_ENV) bench/redis/run.sh smoke >/dev/null

# redis-lua over xpio.luasocket (1 and 10 tasks) against plain LuaSocket and
# redis-benchmark, on a redis-server of its own (bench/redis/run.sh).
bench-redis: $(MODULE)
	$(LUA_ENV) bench/redis/run.sh full

clean:
	rm -rf build .build .build-full .build-asan .build-portable

-- LuaRocks rockspec for XPIO, built from a local checkout with
--
--   luarocks --lua-version=5.4 make rockspecs/xpio-scm-1.rockspec
--
-- run from the repository root. The build type is "make": LuaRocks runs
-- `make` and then `make install`, passing its own variables on the command
-- line; the Makefile does the real work (a `swift build` of build/xpio.so).
-- luacheck: globals rockspec_format package version source description dependencies build
rockspec_format = "3.0"
package = "xpio"
version = "scm-1"

source = {
  -- Placeholder: there is no public repository yet, and `luarocks make`
  -- builds the local checkout (the current directory) without fetching this.
  url = "git+https://example.invalid/xpio.git",
}

description = {
  summary = "Lua bindings for networking and inter-process communication",
  detailed = [[
XPIO gives Lua 5.4 non-blocking TCP and UDP sockets, socket pairs, pipes,
process spawning (posix_spawn) and task queues for coroutine schedulers.
The native module is written in (Embedded) Swift; xpio.sched is a small
coroutine scheduler built on it.
]],
  license = "MIT",
  labels = { "networking", "ipc", "sockets", "process", "coroutines" },
}

dependencies = {
  "lua >= 5.4, < 5.5",
}

build = {
  type = "make",
  -- `make` (target all): builds build/xpio.so.
  build_variables = {
    LUA_INCDIR = "$(LUA_INCDIR)",
    LIBFLAG = "$(LIBFLAG)",
    CFLAGS = "$(CFLAGS)",
    LUA = "$(LUA)",
  },
  -- `make install`: build/xpio.so -> LUA_CDIR/xpio.so and
  -- lua/xpio/*.lua -> LUA_LDIR/xpio/, inside the rock's own directory, from
  -- which LuaRocks deploys them into the tree.
  install_variables = {
    LUA_INCDIR = "$(LUA_INCDIR)",
    LIBFLAG = "$(LIBFLAG)",
    CFLAGS = "$(CFLAGS)",
    LUA = "$(LUA)",
    PREFIX = "$(PREFIX)",
    LUA_CDIR = "$(LIBDIR)",
    LUA_LDIR = "$(LUADIR)",
  },
  copy_directories = { "docs" },   -- docs/API.md, for `luarocks doc xpio`
}

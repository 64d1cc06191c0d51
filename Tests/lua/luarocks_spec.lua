-- Packaging: rockspecs/xpio-scm-1.rockspec installs with LuaRocks into a
-- fresh tree, and the stock lua5.4 then loads `xpio` and `xpio.sched` from
-- that tree using only what `luarocks path` sets.
--
-- `luarocks make` runs the Makefile, whose build is a Swift build. This test
-- must never start one (it would take minutes): it sets XPIO_PREBUILT=1, which
-- tells the Makefile to use the existing build/xpio.so as is, and puts a fake
-- `swift` first on PATH that fails at once, so a Makefile that would build
-- anyway makes the test fail quickly instead.

local helper = require "helper"
local shell_quote = helper.shell_quote

-- Run a shell command; returns its output (stdout and stderr) and whether
-- it exited 0, plus how and the code.
local run = helper.run_command

local function on_path(program)
  local _, ok = run("command -v " .. shell_quote(program) .. " >/dev/null")
  return ok
end

local ROOT, LUA = helper.ROOT, helper.LUA
local ROCKSPEC = "rockspecs/xpio-scm-1.rockspec"
local TIME_LIMIT = 300           -- seconds for `luarocks make` (no compiling)

describe("the LuaRocks rockspec", function()
  local tmp

  before_each(function()
    local out, ok = run("mktemp -d /tmp/xpio-luarocks.XXXXXX")
    assert(ok, out)
    tmp = out:gsub("%s+$", "")
  end)

  after_each(function()
    if tmp and tmp:match("^/tmp/xpio%-luarocks%.") then
      run("rm -rf " .. shell_quote(tmp))
      local _, still_there = run("test -e " .. shell_quote(tmp))
      assert.is_false(still_there, "the temporary tree was not removed")
    end
    tmp = nil
  end)

  it("installs into a fresh tree, and lua5.4 loads xpio and xpio.sched from it", function()
    if not on_path("luarocks") then
      return pending("luarocks is not on PATH (Debian: apt-get install luarocks)")
    end
    local module = ROOT .. "/build/xpio.so"
    local _, built = run("test -f " .. shell_quote(module))
    assert.is_true(built, module .. " is missing: the main build must run first")

    local tree = tmp .. "/tree"
    local guard = tmp .. "/guard-bin"
    -- A `swift` that refuses to run: the Makefile must reuse build/xpio.so.
    local out, ok = run(("mkdir -p %s && printf '%%s\\n' '#!/bin/sh' %s 'exit 97' > %s/swift && chmod +x %s/swift")
      :format(shell_quote(guard),
        shell_quote('echo "luarocks_spec: the Makefile tried to run swift $*; it must reuse build/xpio.so" >&2'),
        shell_quote(guard), shell_quote(guard)))
    assert(ok, out)

    local luarocks = "luarocks --lua-version=5.4 --tree " .. shell_quote(tree)
    -- The inner make must not inherit an outer make's flags (a `make test`
    -- running this spec) or a DESTDIR meant for something else.
    out, ok = run(("cd %s && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u DESTDIR"
        .. " XPIO_PREBUILT=1 PATH=%s:\"$PATH\" timeout -k 5 %d %s make %s")
      :format(shell_quote(ROOT), shell_quote(guard), TIME_LIMIT, luarocks, ROCKSPEC))
    assert.is_true(ok, "luarocks make failed:\n" .. out)

    -- What `make install` was asked to put in place, deployed into the tree.
    for _, file in ipairs({ "lib/lua/5.4/xpio.so", "share/lua/5.4/xpio/sched.lua" }) do
      local _, exists = run("test -f " .. shell_quote(tree .. "/" .. file))
      assert.is_true(exists, file .. " is not in the tree; luarocks make said:\n" .. out)
    end
    -- The editor's type definitions stay in the rock's own directory (not
    -- on LUA_PATH), byte for byte the committed ones.
    local rock_dir = tree .. "/lib/luarocks/rocks-5.4/xpio/scm-1"
    local _, types_same = run(("cmp %s/share/xpio/types/xpio.lua %s/types/xpio.lua")
      :format(shell_quote(rock_dir), shell_quote(ROOT)))
    assert.is_true(types_same, "types/xpio.lua is not installed with the rock")
    local listed
    listed, ok = run(luarocks .. " list --porcelain")
    assert.is_true(ok, listed)
    assert.is_truthy(listed:find("^xpio%s+scm%-1") or listed:find("\nxpio%s+scm%-1"),
      "luarocks list does not show xpio scm-1:\n" .. listed)

    -- Load both modules with nothing but `luarocks path`: the inherited
    -- LUA_PATH/LUA_CPATH (which point into the checkout) are removed first,
    -- and the interpreter runs outside the checkout.
    local script = table.concat({
      'local xpio = require "xpio"',
      'local sched = require "xpio.sched"',
      'print("cmodule " .. package.searchpath("xpio", package.cpath))',
      'print("lmodule " .. package.searchpath("xpio.sched", package.path))',
      'local got',
      'sched.spawn(function()',
      '  local a, b = assert(xpio.socketpair())',
      '  sched.spawn(function() assert(a:write("hello")) a:close() end)',
      '  got = b:read(10)',
      '  b:close()',
      'end)',
      'sched.run()',
      'print("exchange " .. tostring(got))',
      'print("version " .. xpio.version())',
    }, "\n")
    out, ok = run(("cd %s && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 sh -c %s")
      :format(shell_quote(tmp), shell_quote(
        ("eval \"$(%s path)\" && exec %s -e %s"):format(luarocks, LUA, shell_quote(script)))))
    assert.is_true(ok, "loading from the tree failed:\n" .. out)
    assert.are.equal(tree .. "/lib/lua/5.4/xpio.so", out:match("cmodule (%S+)"), out)
    assert.are.equal(tree .. "/share/lua/5.4/xpio/sched.lua", out:match("lmodule (%S+)"), out)
    assert.are.equal("hello", out:match("exchange (%S+)"), out)
    assert.is_truthy(out:match("version %S+"), out)
  end)
end)

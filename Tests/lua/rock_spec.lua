-- The binary rock (`make rock`: build/xpio-scm-1.linux-x86_64.rock) installs
-- with `luarocks install` into a fresh tree on a machine without Swift, and
-- the demo and a TLS-free smoke test (xpio.luasocket) run from that tree.
--
-- `make rock` reuses the modules already built (XPIO_PREBUILT=1), and a fake
-- `swift` first on PATH fails at once, so that nothing here can start a
-- Swift build. The install runs with PATH=/usr/bin:/bin: no toolchain.
local helper = require "helper"
local shell_quote, run = helper.shell_quote, helper.run_command
local ROOT, LUA = helper.ROOT, helper.LUA
local ROCK = ROOT .. "/build/xpio-scm-1.linux-x86_64.rock"

describe("the binary rock", function()
  local tmp

  before_each(function()
    local out, ok = run("mktemp -d /tmp/xpio-rock.XXXXXX")
    assert(ok, out)
    tmp = out:gsub("%s+$", "")
  end)

  after_each(function()
    if tmp and tmp:match("^/tmp/xpio%-rock%.") then run("rm -rf " .. shell_quote(tmp)) end
  end)

  it("installs without Swift and runs the demo and xpio.luasocket from the tree", function()
    local _, have = run("command -v luarocks >/dev/null")
    if not have then return pending("luarocks is not on PATH") end
    local guard = tmp .. "/guard-bin"
    local out, ok = run(("mkdir -p %s && printf '%%s\\n' '#!/bin/sh' 'exit 97' > %s/swift && chmod +x %s/swift")
      :format(shell_quote(guard), shell_quote(guard), shell_quote(guard)))
    assert(ok, out)
    out, ok = run(("cd %s && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u DESTDIR"
      .. " XPIO_PREBUILT=1 PATH=%s:\"$PATH\" timeout -k 5 300 make rock"):format(shell_quote(ROOT), shell_quote(guard)))
    assert.is_true(ok, "make rock failed:\n" .. out)
    local listing
    listing, ok = run("unzip -l " .. shell_quote(ROCK))
    assert.is_true(ok, listing)
    for _, file in ipairs({ "lib/xpio.so", "lib/xpio/tls.so", "lua/xpio/sched.lua", "lua/xpio/luasocket.lua",
                            "lua/xpio/luasocket/tcp.lua" }) do
      assert.is_truthy(listing:find(file, 1, true), file .. " is not in the rock:\n" .. listing)
    end

    -- No Swift anywhere on PATH from here on, and no checkout on LUA_PATH.
    local tree = tmp .. "/tree"
    local luarocks = "luarocks --lua-version=5.4 --tree " .. shell_quote(tree)
    local clean = ("cd %s && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 PATH=%s:/usr/bin:/bin ")
      :format(shell_quote(tmp), shell_quote(guard))
    out, ok = run(clean .. "timeout -k 5 300 " .. luarocks .. " install " .. shell_quote(ROCK))
    assert.is_true(ok, "luarocks install failed:\n" .. out)
    local _, has_swift = run(clean .. "sh -c 'command -v swift' | grep -v guard-bin")
    assert.is_false(has_swift, "a swift is on the restricted PATH")

    local function from_tree(script)
      return run(clean .. "sh -c " .. shell_quote(("eval \"$(%s path)\" && exec timeout -k 5 120 %s %s")
        :format(luarocks, LUA, script)))
    end
    out, ok = from_tree(shell_quote(ROOT .. "/examples/demo.lua"))
    assert.is_true(ok, "the demo failed from the tree:\n" .. out)

    local smoke = tmp .. "/smoke.lua"
    local f = assert(io.open(smoke, "w"))
    f:write([[
      local socket = require("xpio.luasocket").install()
      local sched = require "xpio.sched"
      assert(package.searchpath("xpio", package.cpath):find("/tree/", 1, true))
      local server = assert(socket.bind("127.0.0.1", 0))
      local ip, port = server:getsockname()
      local got
      sched.spawn(function()
        local conn = assert(server:accept())
        got = conn:receive()
        assert(conn:send("pong\n"))
        conn:close()
      end)
      sched.spawn(function()
        local c = assert(require("socket").connect(ip, port))
        assert(c:send("ping\r\n"))
        print("reply " .. assert(c:receive()))
        c:close()
      end)
      sched.run()
      print("got " .. got)
    ]])
    f:close()
    out, ok = from_tree(shell_quote(smoke))
    assert.is_true(ok, "the smoke test failed from the tree:\n" .. out)
    assert.matches("reply pong", out)
    assert.matches("got ping", out)
  end)
end)

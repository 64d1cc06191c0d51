-- IPv6, Unix domain sockets, datagrams to and from any address, host
-- names (issue 12). Contract: Spec/socket.spec and Spec/module.spec
-- (addresses, sendto, recvfrom, resolve), and the IPv4 behaviour kept.
local xpio = require "xpio"
local helper = require "helper"

--- Runs `fn` as a task of a fresh scheduler, for at most 10 s; returns its results.
local function run(fn)
  local sched = helper.fresh_sched()
  return helper.run_in_task(sched, 10, fn, sched)
end

local listener = helper.listener

--- An echo round trip of `message` from a client connected to `addr`.
local function echo(sched, l, family, addr, message)
  local client = assert(xpio.socket("TCP", family))
  local server, peer
  sched.spawn(function()
    server = assert(l:accept())
    peer = server:getpeername()
    local data = assert(server:read(4096))
    helper.write_all(server, data)
    server:shutdown("w")
  end)
  assert(client:connect(addr))
  helper.write_all(client, message)
  return helper.read_all(client), server, peer
end

local function temp_path(name)
  local path = os.tmpname()
  os.remove(path)
  return path .. "-" .. name
end

describe("IPv6", function()
  it("a TCP echo over [::1], with bracketed addresses both ways", function()
    local l, addr = listener("inet6")
    assert.truthy(addr:match("^%[::1%]:%d+$"), addr)
    local got, server, peer = run(function(sched) return echo(sched, l, "inet6", addr, "hello over IPv6") end)
    assert.are.equal("hello over IPv6", got)
    assert.truthy(peer:match("^%[::1%]:%d+$"), peer)
    server:close()
    l:close()
  end)

  it("accepts the bracketed forms and scope ids, and refuses bare and broken ones", function()
    local s = assert(xpio.socket("UDP", "inet6"))
    assert.is_true(s:bind("[::1]"))
    assert.truthy(s:getsockname():match("^%[::1%]:%d+$"))
    s:close()
    for _, form in ipairs({ "[::]:0", "[::]", "[::]:", "[0:0:0:0:0:0:0:1]:0" }) do
      s = assert(xpio.socket("UDP", "inet6"))
      assert.is_true(s:bind(form), form)
      s:close()
    end
    -- a link-local address with a scope: well-formed (the bind itself may fail)
    s = assert(xpio.socket("UDP", "inet6"))
    local ok, err = s:bind("[fe80::1%lo]:0")
    assert.is_true(ok or err ~= "xpio: mal-formed address")
    s:close()
    for _, form in ipairs({ "::1", "::1:80", "[::1", "[::1]80", "[::1]:99999", "[::g]:1", "[::1%]:1", "[1.2.3.4]:1" }) do
      s = assert(xpio.socket("UDP", "inet6"))
      local bad, message = s:bind(form)
      assert.is_nil(bad, form)
      assert.are.equal("xpio: mal-formed address", message, form)
      s:close()
    end
  end)

  it("an inet6 listener takes IPv4 clients, shown as mapped addresses", function()
    local l = listener("inet6", "[::]:0")
    local port = l:getsockname():match(":(%d+)$")
    local got, server, peer = run(function(sched) return echo(sched, l, "inet", "127.0.0.1:" .. port, "mapped") end)
    assert.are.equal("mapped", got)
    assert.truthy(peer:match("^%[::ffff:127%.0%.0%.1%]:%d+$"), peer)
    server:close()
    l:close()
  end)

  it("IPV6_V6ONLY and IPV6_UNICAST_HOPS are options of inet6 sockets", function()
    local s = assert(xpio.socket("TCP", "inet6"))
    assert.is_true(s:setsockopt("IPV6_V6ONLY", true))
    assert.is_true(s:getsockopt("IPV6_V6ONLY"))
    assert.is_true(s:setsockopt("IPV6_UNICAST_HOPS", 7))
    assert.are.equal(7, s:getsockopt("IPV6_UNICAST_HOPS"))
    s:close()
  end)
end)

describe("Unix domain sockets", function()
  it("a TCP echo over a path; the path stays until removed, then binds again", function()
    local path = temp_path("echo.sock")
    local l, addr = listener("unix", "unix:" .. path)
    assert.are.equal("unix:" .. path, addr)
    local got, server, peer = run(function(sched) return echo(sched, l, "unix", addr, "hello over a path") end)
    assert.are.equal("hello over a path", got)
    assert.are.equal("unix:", peer)   -- the client has no name
    server:close()
    l:close()
    -- nobody removes the path implicitly
    assert.truthy(io.open(path, "r") or os.execute("test -S " .. helper.shell_quote(path)))
    local again = assert(xpio.socket("TCP", "unix"))
    local ok, err = again:bind("unix:" .. path)
    assert.is_nil(ok)
    assert.are.equal("Address already in use", err)
    assert(os.remove(path))
    assert.is_true(again:bind("unix:" .. path))
    again:close()
    os.remove(path)
  end)

  it("an abstract name needs no file and goes with the socket (Linux only)", function()
    local name = "unix:@xpio-test-" .. helper.pid()
    if helper.portable() then
      local s = assert(xpio.socket("TCP", "unix"))
      assert.are.same({ nil, helper.UNSUPPORTED }, { s:bind(name) })
      assert.are.same({ nil, helper.UNSUPPORTED }, { s:connect(name) })
      assert.are.same({ nil, "xpio: mal-formed address" }, { s:bind("unix:@" .. string.rep("n", 108)) })
      s:close()
      -- "unix:" autobinds an abstract name, which the build could not
      -- take back (a datagram server could not answer its client).
      local u = assert(xpio.socket("UDP", "unix"))
      assert.are.same({ nil, helper.UNSUPPORTED }, { u:bind("unix:") })
      u:close()
      return
    end
    local l, addr = listener("unix", name)
    assert.are.equal(name, addr)
    local got, server = run(function(sched) return echo(sched, l, "unix", name, "abstract") end)
    assert.are.equal("abstract", got)
    server:close()
    l:close()
    local again = listener("unix", name)   -- free again once closed
    again:close()
  end)

  it("a listener whose backlog is full, and a full datagram receiver, answer at once, not spin", function()
    local EAGAIN = "Resource temporarily unavailable"
    local path = temp_path("full.sock")
    local l = assert(xpio.socket("TCP", "unix"))
    assert(l:bind("unix:" .. path))
    assert(l:listen(0))
    local fillers, refused = {}, nil
    for _ = 1, 16 do   -- the backlog takes a few; then the kernel refuses
      local c = assert(xpio.socket("TCP", "unix"))
      fillers[#fillers + 1] = c
      local ok, err = c:try_connect("unix:" .. path)
      if not ok then
        assert.are.equal(EAGAIN, err)
        refused = c
        break
      end
    end
    assert.truthy(refused, "16 connects fitted a backlog of 0")
    local c = assert(xpio.socket("TCP", "unix"))
    local t0, cpu0 = xpio.gettime(), os.clock()
    assert.are.same({ nil, EAGAIN }, { run(function() return c:connect("unix:" .. path) end) })
    assert.is_true(os.clock() - cpu0 < 1 and xpio.gettime() - t0 < 5)
    c:close()
    for _, f in ipairs(fillers) do f:close() end
    l:close()
    os.remove(path)
    -- datagrams to a receiver whose queue is full, from an unconnected sender
    local dpath = temp_path("full.dgram")
    local r = assert(xpio.socket("UDP", "unix"))
    assert(r:bind("unix:" .. dpath))
    local u = assert(xpio.socket("UDP", "unix"))
    local sent, err = 0
    repeat
      local ok
      ok, err = u:try_sendto("x", "unix:" .. dpath)
      if ok then sent = sent + 1 end
    until not ok or sent > 100000
    assert.are.equal(EAGAIN, err)
    assert.are.same({ nil, EAGAIN }, { run(function() return u:sendto("x", "unix:" .. dpath) end) })
    u:close()
    r:close()
    os.remove(dpath)
  end)

  it("refuses paths that do not fit and NUL in a path", function()
    local s = assert(xpio.socket("TCP", "unix"))
    assert.are.same({ nil, "xpio: mal-formed address" }, { s:bind("unix:/" .. string.rep("a", 107)) })
    assert.are.same({ nil, "xpio: mal-formed address" }, { s:bind("unix:/tmp/a\0b") })
    s:close()
  end)
end)

describe("datagrams", function()
  for _, case in ipairs({ { "inet", "127.0.0.1:0" }, { "inet6", "[::1]:0" }, { "unix", "unix:@xpio-dgram-" } }) do
    local family, address = case[1], case[2]
    it("sendto and recvfrom on " .. family .. " keep message boundaries and name the sender", function()
      -- Linux: abstract names, and autobind a name to answer to; elsewhere two paths.
      local paths = {}
      local function path() paths[#paths + 1] = os.tmpname() os.remove(paths[#paths]) return "unix:" .. paths[#paths] end
      local answer = address
      if family == "unix" and helper.portable() then address, answer = path(), path()
      elseif family == "unix" then address, answer = address .. helper.pid(), "unix:" end
      local a = assert(xpio.socket("UDP", family))
      assert(a:bind(address))
      local b = assert(xpio.socket("UDP", family))
      assert(b:bind(answer))
      local messages = { "one", "two two", string.rep("3", 1000) }
      run(function()
        for _, m in ipairs(messages) do assert.are.equal(#m, assert(b:sendto(m, a:getsockname()))) end
        for _, m in ipairs(messages) do
          local data, from, full = a:recvfrom(2000)
          assert.are.equal(m, data)
          assert.are.equal(b:getsockname(), from)
          assert.is_nil(full)
        end
        -- an answer to whoever sent
        assert(a:sendto("reply", b:getsockname()))
        assert.are.equal("reply", (b:recvfrom(100)))
      end)
      a:close()
      b:close()
      for _, p in ipairs(paths) do os.remove(p) end
    end)
  end

  it("names an unnamed Unix sender \"unix:\"", function()
    local name = "unix:@xpio-unnamed-" .. helper.pid()
    local path = helper.portable() and os.tmpname()
    if path then os.remove(path) name = "unix:" .. path end
    local a = assert(xpio.socket("UDP", "unix"))
    assert(a:bind(name))
    local b = assert(xpio.socket("UDP", "unix"))   -- never bound
    assert.are.equal(1, b:try_sendto("x", name))
    assert.are.same({ "x", "unix:" }, { a:try_recvfrom(10) })
    a:close()
    b:close()
    if path then os.remove(path) end
  end)

  it("buffered reads take each datagram whole, however long", function()
    local a = assert(xpio.socket("UDP"))
    assert(a:bind("127.0.0.1:0"))
    local b = assert(xpio.socket("UDP"))
    local line = string.rep("a", 10000)
    assert.are.equal(10001, b:try_sendto(line .. "\n", a:getsockname()))
    assert.are.equal(20000, b:try_sendto(string.rep("b", 20000), a:getsockname()))
    run(function()
      assert.are.equal(line, a:readline())
      assert.are.equal(string.rep("b", 20000), a:readexactly(20000))
    end)
    a:close()
    b:close()
  end)

  it("reports a truncated datagram with its full length", function()
    local a = assert(xpio.socket("UDP"))
    assert(a:bind("127.0.0.1:0"))
    local b = assert(xpio.socket("UDP"))
    assert(b:bind("127.0.0.1:0"))
    assert(b:try_sendto(string.rep("x", 100), a:getsockname()))
    assert(b:try_sendto("next", a:getsockname()))
    run(function()
      local data, from, full = a:recvfrom(10)
      assert.are.equal(string.rep("x", 10), data)
      assert.are.equal(b:getsockname(), from)
      assert.are.equal(100, full)
      assert.are.equal("next", (a:recvfrom(10)))   -- the rest was not mixed into the next one
    end)
    a:close()
    b:close()
  end)

  it("recvfrom on a stream socket returns the bytes sent and the peer, never stale bytes", function()
    -- A read of another socket leaves its bytes in XPIO's shared buffer:
    -- a stream recvfrom must not hand them out in place of its own.
    local x, y = assert(xpio.socketpair())
    assert(y:try_write("password=hunter2"))
    assert.are.equal("password=hunter2", x:try_read(100))
    local client, server = helper.tcp_pair()
    assert(client:try_write("0123456789ABCDEF"))
    run(function()
      local data, from, full = server:recvfrom(100)
      assert.are.equal("0123456789ABCDEF", data)
      assert.are.equal(client:getsockname(), from)
      assert.is_nil(full)
      client:close()
      assert.are.same({ nil, "xpio: end of stream" }, { server:recvfrom(100) })
    end)
    server:close()
    x:close()
    y:close()
  end)

  it("try_recvfrom answers retry when nothing is there", function()
    local a = assert(xpio.socket("UDP"))
    assert(a:bind("127.0.0.1:0"))
    assert.are.same({ nil, "retry" }, { a:try_recvfrom(10) })
    a:close()
  end)

  it("a size beyond INT_MAX is taken as INT_MAX, not refused", function()
    local s = assert(xpio.socket("TCP"))
    assert.is_true(s:setsockopt("SO_RCVBUF", 1 << 31))
    assert.is_true(s:setsockopt("SO_SNDBUF", math.maxinteger))
    assert.is_true(s:getsockopt("SO_RCVBUF") > 0)
    s:close()
  end)

  it("SO_BROADCAST, SO_REUSEPORT and IP_TTL are options", function()
    local u = assert(xpio.socket("UDP"))
    assert.is_true(u:setsockopt("SO_BROADCAST", true))
    assert.is_true(u:getsockopt("SO_BROADCAST"))
    assert.is_true(u:setsockopt("SO_REUSEPORT", true))
    assert.is_true(u:getsockopt("SO_REUSEPORT"))
    assert.is_true(u:setsockopt("IP_TTL", 9))
    assert.are.equal(9, u:getsockopt("IP_TTL"))
    u:close()
  end)
end)

describe("connect on a socket that is connected, or listening", function()
  it("answers nil, message: only the connection under way, to its own address, is made", function()
    local l1, l2 = listener(), listener()
    assert.are.same({ nil, "Transport endpoint is already connected" }, { l1:try_connect(l2:getsockname()) })
    local c = assert(xpio.socket("TCP"))
    local first = { c:try_connect(l1:getsockname()) }
    assert.is_true(first[1] == true or first[2] == "retry", tostring(first[2]))
    assert.are.same({ nil, "Transport endpoint is already connected" }, { c:try_connect(l2:getsockname()) })
    assert.are.equal(l1:getsockname(), c:getpeername())
    assert.are.same({ nil, "retry" }, { l2:try_accept() })   -- nobody came to l2
    -- and the usual way still works: retry, wait, call again
    local d = assert(xpio.socket("TCP"))
    run(function() assert.is_true(d:connect(l2:getsockname())) end)
    assert.are.equal(l2:getsockname(), d:getpeername())
    for _, s in ipairs({ l1, l2, c, d }) do s:close() end
  end)
end)

describe("connect to the unspecified address", function()
  it("reaches this host's loopback, as the kernel takes it, and says so", function()
    local l4 = listener()
    local port = l4:getsockname():match(":(%d+)$")
    for _, target in ipairs({ "0.0.0.0:" .. port, ":" .. port }) do
      local c = assert(xpio.socket("TCP"))
      run(function() assert.is_true(c:connect(target)) end)
      assert.are.equal("127.0.0.1:" .. port, c:getpeername())
      c:close()
    end
    local l6 = assert(xpio.socket("TCP", "inet6"))
    assert(l6:bind("[::1]:0"))
    assert(l6:listen())
    local c = assert(xpio.socket("TCP", "inet6"))
    run(function() assert.is_true(c:connect("[::]:" .. l6:getsockname():match(":(%d+)$"))) end)
    assert.are.equal(l6:getsockname(), c:getpeername())
    for _, s in ipairs({ l4, l6, c }) do s:close() end
  end)
end)

describe("other socket options", function()
  it("SO_LINGER takes seconds or false, and SO_ERROR is read-only", function()
    local s = assert(xpio.socket("TCP"))
    assert.is_false(s:getsockopt("SO_LINGER"))
    assert.is_true(s:setsockopt("SO_LINGER", 3))
    assert.are.equal(3, s:getsockopt("SO_LINGER"))
    assert.is_true(s:setsockopt("SO_LINGER", false))
    assert.is_false(s:getsockopt("SO_LINGER"))
    assert.are.equal(0, s:getsockopt("SO_ERROR"))
    assert.are.same({ nil, "xpio: SO_ERROR is read-only" }, { s:setsockopt("SO_ERROR", 0) })
    s:close()
  end)

  it("SO_ERROR gives a refused connection's errno", function()
    local port = helper.unused_address():match(":(%d+)$")
    local s = assert(xpio.socket("TCP"))
    local ok, err = s:try_connect("127.0.0.1:" .. port)
    assert.is_true(ok == true or err == "retry" or err == "Connection refused")
    local q = xpio.tqueue()
    s:when_write({ _queue = q })
    q:wait(1)
    local code = s:getsockopt("SO_ERROR")
    assert.is_true(code == 111 or code == 0)   -- ECONNREFUSED (0 if the refusal was immediate)
    s:close()
    q:close()
  end)
end)

describe("host names", function()
  it("connect(\"localhost:PORT\") reaches a listener on 127.0.0.1 and one on [::1]", function()
    for _, family in ipairs({ "inet", "inet6" }) do
      local l = listener(family)
      local port = l:getsockname():match(":(%d+)$")
      local got, server = run(function(sched) return echo(sched, l, family, "localhost:" .. port, "by name " .. family) end)
      assert.are.equal("by name " .. family, got)
      server:close()
      l:close()
    end
  end)

  it("an inet6 socket connects by name to a listener on 127.0.0.1 only (mapped)", function()
    local l = listener("inet")
    local port = l:getsockname():match(":(%d+)$")
    local got, server = run(function(sched) return echo(sched, l, "inet6", "localhost:" .. port, "mapped") end)
    assert.are.equal("mapped", got)
    server:close()
    l:close()
  end)

  it("resolve refuses a numeric service above 65535 and takes a scoped IPv6 address", function()
    assert.are.same({ nil, "xpio: mal-formed service" }, { xpio.try_resolve("127.0.0.1", "65536") })
    assert.are.same({ nil, "xpio: mal-formed service" }, { xpio.try_resolve("localhost", "99999") })
    assert.are.same({ "127.0.0.1:65535" }, (run(function() return xpio.resolve("127.0.0.1", "65535") end)))
    assert.are.same({ "[fe80::1%lo]:80" }, (run(function() return xpio.resolve("fe80::1%lo", "80") end)))
    assert.are.same({ nil, "xpio: mal-formed host name" }, { xpio.try_resolve("fe80::1%", "80") })
  end)

  it("resolve answers a numeric address at once, outside a task too", function()
    assert.are.same({ "127.0.0.1:80" }, xpio.resolve("127.0.0.1", "80"))
    for i = 1, 200 do   -- each a new lookup: none may answer "retry"
      assert.are.same({ "10.0.0." .. i .. ":" .. i }, xpio.try_resolve("10.0.0." .. i, tostring(i)))
    end
    assert.are.same({ "[::1]:443" }, xpio.try_resolve("::1", "443"))
    assert.are.same({ "10.1.2.3:0" }, xpio.try_resolve("10.1.2.3"))
    assert.are.same({ "127.0.0.1:80" }, xpio.try_resolve("2130706433", "80"))   -- as the address format takes it
    assert.are.same({ "[fe80::1%lo]:7" }, xpio.resolve("fe80::1%lo", "7", "inet6"))
    local none, err = xpio.try_resolve("127.0.0.1", "80", "inet6")
    assert.is_nil(none)
    assert.are_not.equal("retry", err)   -- getaddrinfo's refusal, at once
  end)

  it("connect to a name tries its addresses in turn", function()
    -- localhost is ::1 and 127.0.0.1 for resolve; an inet socket gets 127.0.0.1
    local addresses = run(function() return assert(xpio.resolve("localhost", "80")) end)
    assert.are.same({ "[::1]:80", "127.0.0.1:80" }, addresses)
    assert.are.same({ "127.0.0.1:80" }, (run(function() return xpio.resolve("localhost", "80", "inet") end)))
    assert.are.same({ "[::1]:443" }, (run(function() return xpio.resolve("localhost", "https", "inet6") end)))
  end)

  it("bind takes a name too", function()
    local s = assert(xpio.socket("TCP"))
    assert.is_true(s:bind("localhost:0"))
    assert.truthy(s:getsockname():match("^127%.0%.0%.1:%d+$"))
    s:close()
  end)

  it("a name that cannot exist gives the resolver's message", function()
    local addresses, err = run(function() return xpio.resolve("no-such-host.invalid", "80") end)
    assert.is_nil(addresses)
    assert.is_string(err)
    assert.is_nil(err:find("^xpio: "), err)
    local s = assert(xpio.socket("TCP"))
    local ok, cerr = run(function() return s:connect("no-such-host.invalid:80") end)
    assert.is_nil(ok)
    assert.are.equal(err, cerr)
    s:close()
    assert.are.same({ nil, "xpio: mal-formed host name" }, { run(function() return xpio.resolve("not a name") end) })
  end)

  it("try_connect answers retry while the name is resolved, and when_write wakes when it is", function()
    local l = listener("inet")
    local port = l:getsockname():match(":(%d+)$")
    local s = assert(xpio.socket("TCP"))
    local q = xpio.tqueue()
    local ok, err = s:try_connect("127.0.0.1.nip.invalid:" .. port)   -- a name: resolved by a worker
    assert.is_nil(ok)
    assert.are.equal("retry", err)
    local task = { _queue = q }
    assert.is_true(s:when_write(task))
    local ready = q:wait(10)
    assert.are.same({ task }, ready)
    ok, err = s:try_connect("127.0.0.1.nip.invalid:" .. port)
    assert.is_nil(ok)
    assert.is_string(err)
    assert.are_not.equal("retry", err)   -- the resolver's answer: no such name
    s:close()
    q:close()
    l:close()
  end)

  it("200 concurrent resolutions under the scheduler each get their own answer", function()
    local sched = helper.fresh_sched()
    local answers = {}
    local fns = {}
    for i = 1, 200 do
      fns[i] = function()
        local host = "127.0." .. (i // 256) .. "." .. (i % 256)
        answers[i] = { host, xpio.resolve(host, tostring(1000 + i), "inet") }
      end
    end
    helper.run_tasks(sched, 20, fns)
    for i = 1, 200 do
      local host, list = answers[i][1], answers[i][2]
      assert.are.same({ host .. ":" .. (1000 + i) }, list)
    end
  end)
end)

-- XPIO_RESOLVER_DELAY makes every lookup wait: a test's way to catch one in
-- flight. These run in a child interpreter with the delay set: 300 ms by
-- default; 3 s where a test tells waking at once from waking when the
-- lookup ends, so that its bound (1.5 s) holds on a loaded machine.
describe("resolution in flight", function()
  local function child(script, delay_ms)
    local out, ok = helper.run_lua_script(script, "export XPIO_RESOLVER_DELAY=" .. (delay_ms or 300))
    return ok, out
  end

  it("a try_resolve given up on lets go of its descriptors at a later wait", function()
    local ok, out = child([[
      local xpio = require "xpio"
      local helper = require "helper"
      local before = #helper.fd_list()
      -- a service name: a worker looks it up (slowed down: no race)
      assert(select(2, xpio.try_resolve("127.0.0.1", "http")) == "retry")
      assert(#helper.fd_list() > before)
      local q = xpio.tqueue()
      local deadline = xpio.gettime() + 10
      repeat q:wait(0.01) until #helper.fd_list() <= before + 1 or xpio.gettime() > deadline   -- +1: the queue
      q:close()
      assert(#helper.fd_list() == before, "the lookup kept its descriptors")
      print("let go")
    ]], 100)
    assert(ok, out)
    assert.matches("let go", out)
  end)

  local PRELUDE = [[
    local xpio = require "xpio"
    local helper = require "helper"
    local function threads()
      for line in io.lines("/proc/self/status") do
        local n = line:match("^Threads:%s*(%d+)")
        if n then return tonumber(n) end
      end
    end
  ]]

  it("sockets and queues dropped while names are resolved leak nothing and hang nothing", function()
    local ok, out = child(PRELUDE .. [[
      local before = #helper.fd_list()
      for i = 1, 20 do
        local s = assert(xpio.socket("TCP"))
        local ok, err = s:try_connect("name" .. i .. ".invalid:80")
        assert(ok == nil and err == "retry", tostring(err))
        s:close()                                    -- closed mid-resolution
        local t = xpio.socket("TCP")
        t:try_connect("other" .. i .. ".invalid:80") -- dropped mid-resolution
      end
      local q = xpio.tqueue()
      for i = 1, 20 do
        assert(select(2, xpio.try_resolve("q" .. i .. ".invalid")) == "retry")
        assert(xpio.when_resolve({ _queue = q }, "q" .. i .. ".invalid"))
      end
      q = nil                                        -- a queue dropped with tasks waiting
      collectgarbage() collectgarbage()
      assert(threads() <= 1 + 4, "more than 4 resolver threads")
      -- the lookups end, their requests go 2 s after they finish
      local wait = xpio.tqueue()
      local deadline = xpio.gettime() + 15
      repeat
        wait:wait(0.2)
        xpio.try_resolve("not a name")               -- any call lets finished requests go
        collectgarbage()
      until #helper.fd_list() <= before + 1 or xpio.gettime() > deadline
      wait:close()
      local after = #helper.fd_list()
      assert(after <= before, ("descriptors: %d before, %d after"):format(before, after))
      print("ok", threads())
    ]])
    assert.is_true(ok, out)
    assert.truthy(out:find("ok", 1, true), out)
  end)

  it("closing a socket wakes the task waiting for its connect by name", function()
    local ok, out = child(PRELUDE .. [[
      local q = xpio.tqueue()
      local s = assert(xpio.socket("TCP"))
      assert(select(2, s:try_connect("slow.invalid:80")) == "retry")
      local task = { _queue = q }
      assert(s:when_write(task))
      assert(s:close())
      local t0 = xpio.gettime()
      local ready = q:wait(1)
      assert(#ready == 1 and ready[1] == task, "the waiting task did not wake")
      assert(xpio.gettime() - t0 < 1.5, "it woke only when the lookup ended")
      assert(select(2, s:try_connect("slow.invalid:80")) == "xpio: socket is closed")
      print("ok")
    ]], 3000)
    assert.is_true(ok, out)
    assert.truthy(out:find("ok", 1, true), out)
  end)

  it("a blocking resolve and a connect by name honour sched.timeout", function()
    local ok, out = child(PRELUDE .. [[
      local sched = require "xpio.sched"
      sched.onerror(sched.raise)
      sched.spawn(function()
        local t0 = xpio.gettime()
        local list, err = sched.timeout(0.05, xpio.resolve, "slow.invalid")
        assert(list == nil and err == "timeout", tostring(err))
        assert(xpio.gettime() - t0 < 1.5, "the timeout came when the lookup ended")
        local s = assert(xpio.socket("TCP"))
        local ok2, err2 = sched.timeout(0.05, s.connect, s, "slow.invalid:80")
        assert(ok2 == nil and err2 == "timeout", tostring(err2))
        assert(sched.queue:isEmpty(), "the queue still has the task")
        s:close()
      end)
      sched.run()
      print("ok")
    ]], 3000)
    assert.is_true(ok, out)
    assert.truthy(out:find("ok", 1, true), out)
  end)
end)

describe("argument checks the documents demand", function()
  it("a when_ call whose task has no tqueue raises naming the function", function()
    local a = assert(xpio.socketpair())
    for _, task in ipairs({ {}, { _queue = 5 }, { _queue = a } }) do
      local ok, err = pcall(function() return a:when_read(task) end)
      assert.is_false(ok)
      assert.truthy(err:find("bad argument #1 to 'when_read' (task._queue is not a tqueue)", 1, true), err)
    end
    a:close()
  end)
end)

-- Behavioural tests for socket objects: TCP and UDP sockets, socket pairs,
-- pipes and fdopen'd descriptors (issue 4). Contract: Spec/socket.spec and
-- Spec/module.spec (docs/API.md).
local xpio = require "xpio"
local sched = require "xpio.sched"
sched.onerror(sched.raise) -- a failing assertion in a task fails the test
local helper = require "helper"

local O_NONBLOCK, O_CLOEXEC = helper.O_NONBLOCK, helper.O_CLOEXEC
local CLOSED = "xpio: socket is closed"

local poll = helper.poll

--- Read from `s` (with try_read) until `n` bytes have arrived.
local function read_exactly(s, n)
  local parts, got = {}, 0
  while got < n do
    local data, err = poll(s.try_read, s, n - got)
    assert(data, "read failed: " .. tostring(err))
    parts[#parts + 1] = data
    got = got + #data
  end
  return table.concat(parts)
end

local tcp_pair = helper.tcp_pair
local closed_port = helper.unused_address   -- an address where nothing listens

--- Run each function as a scheduler task until all are done (5 s at most).
local function run_tasks(...)
  helper.run_tasks(sched, 5, { ... })
end

local fd_flags = helper.fd_flags

local function fd_is_open(fd)
  local f = io.open("/proc/self/fdinfo/" .. fd)
  if f then f:close() end
  return f ~= nil
end

local open_fds = helper.open_fds

local function assert_cloexec_nonblock(s)
  local flags = fd_flags(s:fileno())
  assert.are_not.equal(0, flags & O_CLOEXEC, "descriptor is not close-on-exec")
  assert.are_not.equal(0, flags & O_NONBLOCK, "descriptor is not non-blocking")
  assert.is_true(s:getsockopt("O_NONBLOCK"))
end

--- Assert that `fn` raises an error whose message contains `text`.
local function raises(text, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error containing: " .. text)
  err = tostring(err)
  assert.truthy(err:find(text, 1, true), "got: " .. err .. "; wanted: " .. text)
end

describe("xpio.socket", function()
  it("creates TCP and UDP sockets", function()
    for _, kind in ipairs({ "TCP", "UDP" }) do
      local s = xpio.socket(kind)
      assert.are.equal("xpio.socket", getmetatable(s).__name)
      assert.is_true(math.type(s:fileno()) == "integer")
      assert.are.equal("xpio.socket: fd " .. s:fileno(), tostring(s))
      assert.is_true(s:close())
    end
  end)

  it("rejects an unknown type with nil and a message", function()
    for _, kind in ipairs({ "SCTP", "tcp", "", "TCP " }) do
      local s, err = xpio.socket(kind)
      assert.is_nil(s)
      assert.are.equal("xpio: unsupported socket type", err)
    end
  end)

  it("creates non-blocking close-on-exec descriptors", function()
    local t = assert(xpio.socket("TCP"))
    local u = assert(xpio.socket("UDP"))
    assert_cloexec_nonblock(t)
    assert_cloexec_nonblock(u)
    t:close()
    u:close()
  end)

  it("gives non-blocking close-on-exec descriptors from accept and connect", function()
    local client, server = tcp_pair()
    assert_cloexec_nonblock(client)
    assert_cloexec_nonblock(server)
    client:close()
    server:close()
  end)
end)

describe("xpio.socketpair", function()
  it("returns two connected stream sockets", function()
    local a, b = xpio.socketpair()
    assert.are.equal("xpio.socket", getmetatable(a).__name)
    assert.are.equal("xpio.socket", getmetatable(b).__name)
    assert.are.equal(5, a:try_write("hello"))
    assert.are.equal("hello", read_exactly(b, 5))
    assert.are.equal(5, b:try_write("world"))
    assert.are.equal("world", read_exactly(a, 5))
    assert_cloexec_nonblock(a)
    assert_cloexec_nonblock(b)
    a:close()
    b:close()
  end)
end)

describe("xpio.pipe", function()
  it("returns the read end then the write end", function()
    local r, w = xpio.pipe()
    assert.are.equal("xpio.socket", getmetatable(r).__name)
    assert.are.equal("xpio.socket", getmetatable(w).__name)
    assert.are.equal(3, w:try_write("abc"))
    assert.are.equal("abc", read_exactly(r, 3))
    -- the wrong directions fail with the strerror text
    local n, err = r:try_write("x")
    assert.is_nil(n)
    assert.are.equal("Bad file descriptor", err)
    local data, err2 = w:try_read(1)
    assert.is_nil(data)
    assert.are.equal("Bad file descriptor", err2)
    r:close()
    w:close()
  end)

  it("gives non-blocking close-on-exec descriptors", function()
    local r, w = xpio.pipe()
    assert_cloexec_nonblock(r)
    assert_cloexec_nonblock(w)
    r:close()
    w:close()
  end)

  it("reports end of stream as a single nil once the writer closes", function()
    local r, w = xpio.pipe()
    assert.are.equal(2, w:try_write("hi"))
    w:close()
    assert.are.equal("hi", r:try_read(10))
    assert.are.equal(1, select("#", r:try_read(10)))
    assert.is_nil(r:try_read(10))
    r:close()
  end)
end)

describe("xpio.fdopen", function()
  it("owns a duplicate of the descriptor", function()
    local r, w = xpio.pipe()
    local d = assert(xpio.fdopen(w:fileno()))
    assert.are.equal("xpio.socket", getmetatable(d).__name)
    assert.are_not.equal(w:fileno(), d:fileno())
    assert_cloexec_nonblock(d)
    assert.are.equal(2, d:try_write("hi"))
    assert.are.equal("hi", read_exactly(r, 2))
    -- closing the duplicate leaves the original open
    assert.is_true(d:close())
    assert.are.equal(3, w:try_write("abc"))
    assert.are.equal("abc", read_exactly(r, 3))
    r:close()
    w:close()
  end)

  it("gives a blocking file back blocking when the duplicate closes or is collected", function()
    -- O_NONBLOCK belongs to the open file: without this, xpio.fdopen(0)
    -- would leave io.read failing with EAGAIN.
    local r, w = xpio.pipe()
    assert(r:setsockopt("O_NONBLOCK", false))
    local d = assert(xpio.fdopen(r:fileno()))
    assert.is_true(d:getsockopt("O_NONBLOCK"))
    assert.is_true(d:close())
    assert.is_false(r:getsockopt("O_NONBLOCK"))
    xpio.fdopen(r:fileno())   -- dropped at once
    collectgarbage()
    collectgarbage()
    assert.is_false(r:getsockopt("O_NONBLOCK"))
    -- a file that was non-blocking stays so
    local d2 = assert(xpio.fdopen(w:fileno()))
    d2:close()
    assert.is_true(w:getsockopt("O_NONBLOCK"))
    r:close()
    w:close()
  end)

  it("keeps a shared file non-blocking until the last fdopen of it closes", function()
    -- Two fdopens of one blocking file (a library and the program both on
    -- stdin): the first to close must not make the other's try_read block.
    local r, w = xpio.pipe()
    assert(r:setsockopt("O_NONBLOCK", false))
    local a = assert(xpio.fdopen(r:fileno()))
    local b = assert(xpio.fdopen(r:fileno()))
    local held = { assert(xpio.fdopen(a:fileno())) }
    assert.is_true(a:close())
    assert.is_true(b:getsockopt("O_NONBLOCK"))
    assert.are.same({ nil, "retry" }, { b:try_read(10) })
    assert.is_true(b:close())
    assert.is_true(held[1]:getsockopt("O_NONBLOCK"))
    held[1] = nil   -- the last: collected, it gives the file back blocking
    collectgarbage()
    collectgarbage()
    assert.is_false(r:getsockopt("O_NONBLOCK"))
    -- a detached one gives its share up, and leaves the flag as it is
    local d = assert(xpio.fdopen(r:fileno()))
    local e = assert(xpio.fdopen(r:fileno()))
    local fd = assert(d:detach())
    assert.is_true(e:close())
    assert.is_false(r:getsockopt("O_NONBLOCK"))
    assert(xpio.adopt(fd)):close()
    r:close()
    w:close()
  end)

  it("never closes the original descriptor when collected", function()
    local r, w = xpio.pipe()
    xpio.fdopen(w:fileno())   -- dropped at once
    collectgarbage()
    collectgarbage()
    assert.are.equal(2, w:try_write("ok"))
    assert.are.equal("ok", read_exactly(r, 2))
    r:close()
    w:close()
  end)

  it("works on standard descriptors without closing them", function()
    local d = assert(xpio.fdopen(1))
    assert.are_not.equal(1, d:fileno())
    assert.are.equal("xpio.socket: fd " .. d:fileno(), tostring(d))
    assert.is_true(d:close())
    assert.is_true(fd_is_open(1))
  end)

  it("returns nil and a message for a descriptor that is not open", function()
    local r, w = xpio.pipe()
    local n = r:fileno()
    r:close()
    w:close()
    assert.is_false(fd_is_open(n))
    local d, err = xpio.fdopen(n)
    assert.is_nil(d)
    assert.are.equal("Bad file descriptor", err)
    d, err = xpio.fdopen(-1)
    assert.is_nil(d)
    assert.is_string(err)
  end)
end)

describe("socket:bind and socket:listen", function()
  it("bind and listen return true", function()
    local s = assert(xpio.socket("TCP"))
    assert.is_true(s:bind("127.0.0.1"))
    assert.is_true(s:listen())
    s:close()
    local t = assert(xpio.socket("TCP"))
    assert.is_true(t:bind("127.0.0.1:0"))
    assert.is_true(t:listen(5))
    t:close()
  end)

  it("bind picks a port for port 0 and getsockname reports it", function()
    local s = assert(xpio.socket("TCP"))
    assert.are.equal("0.0.0.0:0", s:getsockname())
    assert(s:bind("127.0.0.1:0"))
    local address = s:getsockname()
    local port = tonumber(address:match("^127%.0%.0%.1:(%d+)$"))
    assert.is_truthy(port)
    assert.is_true(port > 0 and port <= 65535)
    s:close()
  end)

  it("reports \"Address already in use\"", function()
    local a = assert(xpio.socket("TCP"))
    assert(a:bind("127.0.0.1"))
    assert(a:listen())
    local b = assert(xpio.socket("TCP"))
    local ok, err = b:bind(a:getsockname())
    assert.is_nil(ok)
    assert.are.equal("Address already in use", err)
    a:close()
    b:close()
  end)

  it("listen on a UDP socket fails with the strerror text", function()
    local u = assert(xpio.socket("UDP"))
    local ok, err = u:listen()
    assert.is_nil(ok)
    assert.are.equal("Operation not supported", err)
    u:close()
  end)
end)

describe("connect and accept", function()
  it("try_accept answers \"retry\" when nothing is pending", function()
    local s = assert(xpio.socket("TCP"))
    assert(s:bind("127.0.0.1"))
    assert(s:listen())
    local a, err = s:try_accept()
    assert.is_nil(a)
    assert.are.equal("retry", err)
    s:close()
  end)

  it("try_connect and try_accept connect two sockets", function()
    local listener = assert(xpio.socket("TCP"))
    assert(listener:bind("127.0.0.1"))
    assert(listener:listen())
    local client = assert(xpio.socket("TCP"))
    local ok, err = client:try_connect(listener:getsockname())
    assert.is_true(ok == true or err == "retry")
    assert.is_true(poll(client.try_connect, client, listener:getsockname()))
    local server = assert(poll(listener.try_accept, listener))
    assert.are.equal("xpio.socket", getmetatable(server).__name)
    assert.are.equal(listener:getsockname(), client:getpeername())
    assert.are.equal(client:getsockname(), server:getpeername())
    assert.are.equal(server:getsockname(), client:getpeername())
    listener:close()
    client:close()
    server:close()
  end)

  it("try_connect to a closed port reports \"Connection refused\"", function()
    local s = assert(xpio.socket("TCP"))
    local ok, err = poll(s.try_connect, s, closed_port())
    assert.is_nil(ok)
    assert.are.equal("Connection refused", err)
    s:close()
  end)

  it("blocking connect to a closed port reports \"Connection refused\"", function()
    local address = closed_port()
    local ok, err
    run_tasks(function()
      local s = assert(xpio.socket("TCP"))
      ok, err = s:connect(address)
      s:close()
    end)
    assert.is_nil(ok)
    assert.are.equal("Connection refused", err)
  end)

  it("blocking connect and accept return true and a socket", function()
    local listener = assert(xpio.socket("TCP"))
    assert(listener:bind("127.0.0.1"))
    assert(listener:listen())
    local address = listener:getsockname()
    local accepted, connected, client
    run_tasks(function()
      accepted = assert(listener:accept())
    end, function()
      client = assert(xpio.socket("TCP"))
      connected = client:connect(address)
    end)
    assert.is_true(connected)
    assert.are.equal("xpio.socket", getmetatable(accepted).__name)
    assert.are.equal(client:getsockname(), accepted:getpeername())
    assert_cloexec_nonblock(accepted)
    accepted:close()
    client:close()
    listener:close()
  end)

  it("accept on a socket that is not listening fails with the strerror text", function()
    local s = assert(xpio.socket("TCP"))
    local a, err = s:try_accept()
    assert.is_nil(a)
    assert.are.equal("Invalid argument", err)
    s:close()
  end)

  it("getpeername on an unconnected socket returns nil and the strerror text", function()
    local s = assert(xpio.socket("TCP"))
    local a, err = s:getpeername()
    assert.is_nil(a)
    assert.are.equal("Transport endpoint is not connected", err)
    s:close()
  end)
end)

describe("read", function()
  it("returns the data, 1 to n bytes", function()
    local a, b = xpio.socketpair()
    assert.are.equal(10, a:try_write("0123456789"))
    local data = poll(b.try_read, b, 4)
    assert.is_string(data)
    assert.is_true(#data >= 1 and #data <= 4)
    assert.are.equal(("0123456789"):sub(1, #data), data)
    assert.are.equal(("0123456789"):sub(#data + 1), read_exactly(b, 10 - #data))
    a:close()
    b:close()
  end)

  it("returns nil, \"retry\" when there is nothing to read", function()
    local a, b = xpio.socketpair()
    local data, err = a:try_read(10)
    assert.is_nil(data)
    assert.are.equal("retry", err)
    local client, server = tcp_pair()
    data, err = server:try_read(10)
    assert.is_nil(data)
    assert.are.equal("retry", err)
    local r, w = xpio.pipe()
    data, err = r:try_read(10)
    assert.is_nil(data)
    assert.are.equal("retry", err)
    for _, s in ipairs({ a, b, client, server, r, w }) do s:close() end
  end)

  it("returns a single nil at end of stream", function()
    local client, server = tcp_pair()
    assert.are.equal(3, client:try_write("end"))
    client:close()
    assert.are.equal("end", read_exactly(server, 3))
    local n = select("#", poll(server.try_read, server, 10))
    assert.are.equal(1, n)
    assert.is_nil(server:try_read(10))
    -- and again: end of stream stays end of stream
    assert.are.equal(1, select("#", server:try_read(10)))
    server:close()
  end)

  it("blocking read returns a single nil at end of stream", function()
    local a, b = xpio.socketpair()
    local count, first, data
    run_tasks(function()
      data = b:read(100)
      local results = table.pack(b:read(100))
      count, first = results.n, results[1]
    end, function()
      sched.sleep(0.02)
      assert.are.equal(4, a:write("data"))
      sched.sleep(0.02)
      a:close()
    end)
    assert.are.equal("data", data)
    assert.are.equal(1, count)
    assert.is_nil(first)
    b:close()
  end)

  it("read(0) returns \"\" at once, with no error", function()
    local a, b = xpio.socketpair()
    assert.are.equal("", a:try_read(0))                 -- nothing to read
    local unconnected = assert(xpio.socket("TCP"))
    assert.are.equal("", unconnected:try_read(0))       -- would be an error
    local r, w = xpio.pipe()
    assert.are.equal("", w:try_read(0))                 -- write end: would be EBADF
    b:close()
    assert.are.equal("", a:try_read(0))                 -- end of stream
    local blocking
    run_tasks(function() blocking = table.pack(r:read(0)) end)
    assert.are.equal(1, blocking.n)
    assert.are.equal("", blocking[1])
    for _, s in ipairs({ a, unconnected, r, w }) do s:close() end
  end)

  it("is binary-safe and gives what is there when asked for more", function()
    local a, b = xpio.socketpair()
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local all = table.concat(bytes) .. "\0\0end\0"
    assert.are.equal(#all, a:try_write(all))
    assert.are.equal(all, read_exactly(b, #all))
    assert.are.equal(3, b:try_write("\0x\0"))
    assert.are.equal("\0x\0", poll(a.try_read, a, math.maxinteger))
    a:close()
    b:close()
  end)

  it("reports errors with the strerror text", function()
    local s = assert(xpio.socket("TCP"))
    local data, err = s:try_read(10)
    assert.is_nil(data)
    assert.are.equal("Transport endpoint is not connected", err)
    s:close()
  end)

  it("reads at most 64 KiB in one call", function()
    local a, b = xpio.socketpair()
    local total = 0
    while total < 200000 do
      local n, err = a:try_write(string.rep("x", 200000 - total))
      if not n then
        assert.are.equal("retry", err)
        break
      end
      total = total + n
    end
    local data = poll(b.try_read, b, 1000000)
    assert.is_true(#data >= 1 and #data <= 65536)
    a:close()
    b:close()
  end)

  it("raises an error for a negative size", function()
    local a, b = xpio.socketpair()
    raises("bad argument #1 to 'try_read'", function() return a:try_read(-1) end)
    local ok, err
    run_tasks(function() ok, err = pcall(function() return a:read(-1) end) end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("bad argument #1 to 'read'", 1, true), tostring(err))
    a:close()
    b:close()
  end)
end)

describe("write", function()
  it("returns the number of bytes written", function()
    local a, b = xpio.socketpair()
    assert.are.equal(5, a:try_write("hello"))
    assert.are.equal("hello", read_exactly(b, 5))
    local n
    run_tasks(function() n = a:write("blocking") end)
    assert.are.equal(8, n)
    assert.are.equal("blocking", read_exactly(b, 8))
    a:close()
    b:close()
  end)

  it("accepts a number and writes its string form", function()
    local a, b = xpio.socketpair()
    assert.are.equal(5, a:try_write(12345))
    assert.are.equal("12345", read_exactly(b, 5))
    assert.are.equal(3, a:try_write(1.5))
    assert.are.equal("1.5", read_exactly(b, 3))
    a:close()
    b:close()
  end)

  it("returns nil, \"retry\" when the buffer is full", function()
    local a, b = xpio.socketpair()
    local chunk = string.rep("z", 65536)
    local total, err = 0, nil
    for _ = 1, 10000 do
      local n
      n, err = a:try_write(chunk)
      if not n then break end
      assert.is_true(n >= 1 and n <= #chunk)
      total = total + n
    end
    assert.are.equal("retry", err)
    assert.is_true(total > 0)
    -- drain everything; the writer can write again afterwards
    local received = #read_exactly(b, total)
    assert.are.equal(total, received)
    assert.are.equal(2, a:try_write("ok"))
    assert.are.equal("ok", read_exactly(b, 2))
    a:close()
    b:close()
  end)

  it("blocking write completes a large transfer under the scheduler", function()
    local a, b = xpio.socketpair()
    local pieces = {}
    for i = 1, 4096 do pieces[i] = string.format("%07d|", i) .. string.rep("q", 248) end
    local payload = table.concat(pieces)    -- 1 MiB
    local received = {}
    run_tasks(function()
      local sent = 0
      while sent < #payload do
        local n = assert(a:write(payload:sub(sent + 1)))
        assert.is_true(n >= 1)
        sent = sent + n
      end
      a:close()
    end, function()
      while true do
        local data, err = b:read(1000000)
        if data == nil then
          assert.is_nil(err)
          break
        end
        assert.is_true(#data >= 1 and #data <= 65536)
        received[#received + 1] = data
      end
    end)
    assert.is_true(table.concat(received) == payload, "the transfer corrupted the data")
    b:close()
  end)

  it("writing to a pipe whose reader is closed gives nil, \"Broken pipe\"", function()
    local r, w = xpio.pipe()
    r:close()
    local n, err = w:try_write("x")
    assert.is_nil(n)
    assert.are.equal("Broken pipe", err)
    local n2, err2
    run_tasks(function() n2, err2 = w:write("y") end)
    assert.is_nil(n2)
    assert.are.equal("Broken pipe", err2)
    w:close()
  end)

  it("writing to a socket whose peer is closed gives nil, \"Broken pipe\"", function()
    local a, b = xpio.socketpair()
    b:close()
    local n, err = a:try_write("x")
    assert.is_nil(n)
    assert.are.equal("Broken pipe", err)
    a:close()
  end)

  it("SIGPIPE is ignored once the module is loaded", function()
    local f = assert(io.open("/proc/self/status"))
    local status = f:read("a")
    f:close()
    local ignored = assert(tonumber(status:match("SigIgn:%s*(%x+)"), 16))
    assert.are_not.equal(0, ignored & (1 << (13 - 1)), "SIGPIPE is not ignored")
  end)

  it("a fresh process with default SIGPIPE survives a broken pipe once it loads xpio", function()
    -- xpio.spawn gives the child default signal dispositions
    local script = [[
      local f = assert(io.open("/proc/self/status"))
      local before = tonumber(f:read("a"):match("SigIgn:%s*(%x+)"), 16) & (1 << 12)
      f:close()
      local xpio = require "xpio"
      local r, w = xpio.pipe()
      r:close()
      local n, err = w:try_write("x")
      io.write(before, " ", tostring(n), " ", tostring(err), " alive")
    ]]
    local r, w = xpio.pipe()
    local child = assert(xpio.spawn({ "lua5.4", "-e", script }, xpio.env, { [1] = w, [2] = 2 }))
    local out, how, code
    run_tasks(function()
      out = helper.read_all(r)
      how, code = child:wait()
    end)
    assert.are.equal("0 nil Broken pipe alive", out)
    assert.are.equal("exit", how)
    assert.are.equal(0, code)
  end)

  it("reports other errors with the strerror text", function()
    local r, w = xpio.pipe()
    local n, err = r:try_write("x")
    assert.is_nil(n)
    assert.are.equal("Bad file descriptor", err)
    r:close()
    w:close()
  end)
end)

describe("round trips", function()
  it("TCP with try_ functions", function()
    local client, server = tcp_pair()
    assert.are.equal(4, client:try_write("ping"))
    assert.are.equal("ping", read_exactly(server, 4))
    assert.are.equal(4, server:try_write("pong"))
    assert.are.equal("pong", read_exactly(client, 4))
    client:close()
    assert.are.equal(1, select("#", poll(server.try_read, server, 10)))
    server:close()
  end)

  it("TCP with blocking functions under the scheduler", function()
    local listener = assert(xpio.socket("TCP"))
    assert(listener:bind("127.0.0.1"))
    assert(listener:listen())
    local address = listener:getsockname()
    local server_got, client_got, server_eof
    run_tasks(function()
      local conn = assert(listener:accept())
      server_got = conn:read(100)
      assert.are.equal(4, conn:write("pong"))
      server_eof = table.pack(conn:read(100))
      conn:close()
    end, function()
      local c = assert(xpio.socket("TCP"))
      assert.is_true(c:connect(address))
      assert.are.equal(4, c:write("ping"))
      client_got = c:read(100)
      c:close()
    end)
    assert.are.equal("ping", server_got)
    assert.are.equal("pong", client_got)
    assert.are.equal(1, server_eof.n)
    assert.is_nil(server_eof[1])
    listener:close()
  end)

  it("UDP between two bound and connected sockets", function()
    local a = assert(xpio.socket("UDP"))
    local b = assert(xpio.socket("UDP"))
    assert.is_true(a:bind("127.0.0.1"))
    assert.is_true(b:bind("127.0.0.1"))
    assert.is_true(poll(a.try_connect, a, b:getsockname()))
    assert.is_true(poll(b.try_connect, b, a:getsockname()))
    assert.are.equal(b:getsockname(), a:getpeername())
    assert.are.equal(a:getsockname(), b:getpeername())
    local data, err = b:try_read(100)
    assert.is_nil(data)
    assert.are.equal("retry", err)
    assert.are.equal(5, a:try_write("hello"))
    assert.are.equal("hello", poll(b.try_read, b, 100))
    assert.are.equal(5, b:try_write("world"))
    assert.are.equal("world", poll(a.try_read, a, 100))
    -- a datagram read with a small size gives at most that many bytes
    assert.are.equal(10, a:try_write("0123456789"))
    local part = poll(b.try_read, b, 4)
    assert.is_true(#part >= 1 and #part <= 4)
    a:close()
    b:close()
  end)

  it("UDP reports errors with the strerror text", function()
    local u = assert(xpio.socket("UDP"))
    local n, err = u:try_write("x")
    assert.is_nil(n)
    assert.are.equal("Destination address required", err)
    u:close()
    -- a datagram sent to a closed port comes back as "Connection refused"
    u = assert(xpio.socket("UDP"))
    assert(u:bind("127.0.0.1"))
    assert.is_true(poll(u.try_connect, u, closed_port()))
    assert.are.equal(1, u:try_write("x"))
    local data, err2 = poll(u.try_read, u, 10)
    assert.is_nil(data)
    assert.are.equal("Connection refused", err2)
    u:close()
  end)

  it("UDP with blocking connect, write and read", function()
    local a = assert(xpio.socket("UDP"))
    local b = assert(xpio.socket("UDP"))
    assert(a:bind("127.0.0.1"))
    assert(b:bind("127.0.0.1"))
    local got
    run_tasks(function()
      assert.is_true(b:connect(a:getsockname()))
      got = b:read(100)
    end, function()
      assert.is_true(a:connect(b:getsockname()))
      sched.sleep(0.02)
      assert.are.equal(3, a:write("dgm"))
    end)
    assert.are.equal("dgm", got)
    a:close()
    b:close()
  end)
end)

describe("socket options", function()
  it("boolean options round-trip as booleans", function()
    local s = assert(xpio.socket("TCP"))
    for _, name in ipairs({ "TCP_NODELAY", "SO_KEEPALIVE", "SO_REUSEADDR", "O_NONBLOCK" }) do
      assert.is_boolean(s:getsockopt(name))
      assert.is_true(s:setsockopt(name, true))
      assert.is_true(s:getsockopt(name))
      assert.is_true(s:setsockopt(name, false))
      assert.is_false(s:getsockopt(name))
      assert.is_true(s:setsockopt(name, true))
      assert.is_true(s:getsockopt(name))
    end
    s:close()
  end)

  it("sockets are created non-blocking", function()
    for _, kind in ipairs({ "TCP", "UDP" }) do
      local s = assert(xpio.socket(kind))
      assert.is_true(s:getsockopt("O_NONBLOCK"))
      s:close()
    end
  end)

  it("O_NONBLOCK changes the descriptor's flag", function()
    local s = assert(xpio.socket("TCP"))
    assert.is_true(s:setsockopt("O_NONBLOCK", false))
    assert.are.equal(0, fd_flags(s:fileno()) & O_NONBLOCK)
    assert.is_true(s:setsockopt("O_NONBLOCK", true))
    assert.are_not.equal(0, fd_flags(s:fileno()) & O_NONBLOCK)
    s:close()
  end)

  it("buffer sizes round-trip as integers", function()
    local s = assert(xpio.socket("TCP"))
    for _, name in ipairs({ "SO_RCVBUF", "SO_SNDBUF" }) do
      local v = s:getsockopt(name)
      assert.are.equal("integer", math.type(v))
      assert.is_true(v > 0)
      assert.is_true(s:setsockopt(name, 65536))
      v = s:getsockopt(name)
      assert.are.equal("integer", math.type(v))
      assert.is_true(v >= 65536)
    end
    s:close()
  end)

  it("an unknown name gives nil, \"xpio: unknown socket option\"", function()
    local s = assert(xpio.socket("TCP"))
    for _, name in ipairs({ "SO_BOGUS", "", "TCP_NODELAY " }) do
      local v, err = s:getsockopt(name)
      assert.is_nil(v)
      assert.are.equal("xpio: unknown socket option", err)
      local ok, err2 = s:setsockopt(name, true)
      assert.is_nil(ok)
      assert.are.equal("xpio: unknown socket option", err2)
    end
    s:close()
  end)

  -- docs/API.md: wrong argument types and negative sizes raise, naming the
  -- function and the argument; the option says the value's type (Spec/types.spec).
  it("a value of the wrong type for the option, or a negative size, raises naming setsockopt", function()
    local s = assert(xpio.socket("TCP"))
    local cases = {
      { "SO_RCVBUF", "big", "bad argument #2 to 'setsockopt' (number expected, got string)" },
      { "SO_SNDBUF", 1.5, "bad argument #2 to 'setsockopt' (number has no integer representation)" },
      { "TCP_NODELAY", 1, "bad argument #2 to 'setsockopt' (boolean expected, got number)" },
      { "SO_RCVBUF", -1, "bad argument #2 to 'setsockopt' (value must not be negative)" },
      { "SO_SNDBUF", math.mininteger, "bad argument #2 to 'setsockopt' (value must not be negative)" },
      { "SO_LINGER", true, "bad argument #2 to 'setsockopt' (number or false expected, got boolean)" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(function() return s:setsockopt(case[1], case[2]) end)
      assert.is_false(ok, case[1])
      assert.truthy(tostring(err):find(case[3], 1, true), tostring(err))
    end
    -- the option was left as it was
    local size = s:getsockopt("SO_RCVBUF")
    assert.is_true(math.type(size) == "integer" and size > 0)
    s:close()
  end)
end)

describe("socket:shutdown", function()
  it("\"w\" makes the peer read end of stream while the other way still works", function()
    local client, server = tcp_pair()
    assert.is_true(client:shutdown("w"))
    assert.are.equal(1, select("#", poll(server.try_read, server, 10)))
    assert.are.equal(4, server:try_write("back"))
    assert.are.equal("back", read_exactly(client, 4))
    client:close()
    server:close()
  end)

  it("\"r\" shuts down reading", function()
    local client, server = tcp_pair()
    assert.is_true(server:shutdown("r"))
    local r = table.pack(server:try_read(10))
    assert.are.equal(1, r.n)
    assert.is_nil(r[1])
    -- writing still works
    assert.are.equal(2, server:try_write("ok"))
    assert.are.equal("ok", read_exactly(client, 2))
    client:close()
    server:close()
  end)

  it("\"rw\" shuts down both directions", function()
    local client, server = tcp_pair()
    assert.is_true(client:shutdown("rw"))
    assert.are.equal(1, select("#", poll(server.try_read, server, 10)))
    local n, err = client:try_write("x")
    assert.is_nil(n)
    assert.are.equal("Broken pipe", err)
    client:close()
    server:close()
  end)

  it("on an unconnected socket returns nil and the strerror text", function()
    local s = assert(xpio.socket("TCP"))
    local ok, err = s:shutdown("rw")
    assert.is_nil(ok)
    assert.are.equal("Transport endpoint is not connected", err)
    s:close()
  end)
end)

describe("closing", function()
  it("close returns true; tostring then shows the socket closed", function()
    local s = assert(xpio.socket("TCP"))
    local fd = s:fileno()
    assert.are.equal("xpio.socket: fd " .. fd, tostring(s))
    assert.is_true(s:close())
    assert.are.equal("xpio.socket: closed", tostring(s))
    assert.is_false(fd_is_open(fd))
  end)

  it("closing twice gives nil and a message", function()
    local s = assert(xpio.socket("UDP"))
    assert.is_true(s:close())
    local ok, err = s:close()
    assert.is_nil(ok)
    assert.are.equal(CLOSED, err)
  end)

  it("a closed socket answers every method with nil and a message", function()
    local s = assert(xpio.socket("TCP"))
    s:close()
    local calls = {
      { "bind", "127.0.0.1" }, { "listen" }, { "listen", 5 }, { "try_connect", "127.0.0.1:9" },
      { "try_accept" }, { "try_read", 10 }, { "try_write", "x" }, { "getsockname" },
      { "getpeername" }, { "getsockopt", "SO_RCVBUF" }, { "getsockopt", "O_NONBLOCK" },
      { "setsockopt", "TCP_NODELAY", true }, { "shutdown", "rw" }, { "fileno" }, { "close" },
    }
    for _, call in ipairs(calls) do
      local name = call[1]
      local r = table.pack(pcall(s[name], s, table.unpack(call, 2)))
      assert.is_true(r[1], name .. " raised: " .. tostring(r[2]))
      assert.is_nil(r[2], name .. " did not return nil")
      assert.are.equal(CLOSED, r[3], name .. " gave " .. tostring(r[3]))
    end
    local results = {}
    run_tasks(function()
      results.connect = table.pack(pcall(s.connect, s, "127.0.0.1:9"))
      results.accept = table.pack(pcall(s.accept, s))
      results.read = table.pack(pcall(s.read, s, 10))
      results.write = table.pack(pcall(s.write, s, "x"))
    end)
    for name, r in pairs(results) do
      assert.is_true(r[1], name .. " raised: " .. tostring(r[2]))
      assert.is_nil(r[2], name .. " did not return nil")
      assert.are.equal(CLOSED, r[3], name .. " gave " .. tostring(r[3]))
    end
  end)

  it("a closed socket answers when_read and when_write with nil and a message", function()
    local s = assert(xpio.socket("TCP"))
    s:close()
    local q = xpio.tqueue()
    for _, name in ipairs({ "when_read", "when_write" }) do
      local task = { _queue = q }
      local r = table.pack(pcall(s[name], s, task))
      assert.is_true(r[1], name .. " raised: " .. tostring(r[2]))
      assert.is_nil(r[2], name .. " did not return nil")
      assert.are.equal(CLOSED, r[3], name .. " gave " .. tostring(r[3]))
      assert.is_nil(task._dequeue, name .. " scheduled the task")
    end
    assert.is_true(q:isEmpty())
  end)

  it("a closed socket never acts on a reused descriptor number", function()
    local a, b = xpio.socketpair()
    local old = a:fileno()
    a:close()
    local r, w = xpio.pipe()     -- likely reuses the number
    local n, err = a:try_write("x")
    assert.is_nil(n)
    assert.are.equal(CLOSED, err)
    local data, err2 = a:try_read(10)
    assert.is_nil(data)
    assert.are.equal(CLOSED, err2)
    assert.is_nil((a:close()))
    -- dropping and collecting the closed object leaves the new one alone
    a = nil                      -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    if r:fileno() == old or w:fileno() == old then assert.is_true(fd_is_open(old)) end
    assert.are.equal(2, w:try_write("ok"))
    assert.are.equal("ok", read_exactly(r, 2))
    for _, s in ipairs({ b, r, w }) do s:close() end
  end)

  it("closing a socket wakes the tasks blocked on it with nil and a message", function()
    local a, b = xpio.socketpair()
    local listener = assert(xpio.socket("TCP"))
    assert(listener:bind("127.0.0.1"))
    assert(listener:listen())
    local read_result, accept_result
    run_tasks(function()
      read_result = table.pack(b:read(10))
    end, function()
      accept_result = table.pack(listener:accept())
    end, function()
      sched.sleep(0.02)
      b:close()
      listener:close()
    end)
    assert.is_nil(read_result[1])
    assert.are.equal(CLOSED, read_result[2])
    assert.is_nil(accept_result[1])
    assert.are.equal(CLOSED, accept_result[2])
    a:close()
  end)

  it("a <close> variable closes the socket at the end of its scope", function()
    local ref, fd
    do
      local s <close> = assert(xpio.socket("TCP"))
      ref, fd = s, s:fileno()
      assert.is_true(fd_is_open(fd))
    end
    assert.are.equal("xpio.socket: closed", tostring(ref))
    assert.is_false(fd_is_open(fd))
  end)

  it("a <close> variable closes on error and tolerates an explicit close", function()
    local ref
    local ok = pcall(function()
      local s <close> = assert(xpio.socket("TCP"))
      ref = s
      error("boom")
    end)
    assert.is_false(ok)
    assert.are.equal("xpio.socket: closed", tostring(ref))
    local ok2, err2 = pcall(function()
      local s <close> = assert(xpio.socket("UDP"))
      s:close()
    end)
    assert.is_true(ok2, tostring(err2))
  end)

  it("garbage collection closes the descriptor", function()
    local r = xpio.pipe()            -- the write end is dropped at once
    collectgarbage()
    collectgarbage()
    local res = table.pack(poll(r.try_read, r, 10))
    assert.are.equal(1, res.n)
    assert.is_nil(res[1])
    r:close()
    local a = xpio.socketpair()      -- the other end is dropped at once
    collectgarbage()
    collectgarbage()
    res = table.pack(poll(a.try_read, a, 10))
    assert.are.equal(1, res.n)
    assert.is_nil(res[1])
    a:close()
  end)

  it("leaks no descriptor after 5000 sockets are dropped and collected", function()
    collectgarbage()
    collectgarbage()
    local before = open_fds()
    for i = 1, 5000 do
      local s = assert(xpio.socket(i % 2 == 0 and "TCP" or "UDP"))
      if i % 3 == 0 then s:close() end
    end
    for _ = 1, 500 do
      assert(xpio.pipe())
      assert(xpio.socketpair())
    end
    collectgarbage()
    collectgarbage()
    assert.are.equal(before, open_fds())
  end)

  it("leaks no descriptor from accepted, connected and fdopen'd sockets", function()
    collectgarbage()
    collectgarbage()
    local before = open_fds()
    for _ = 1, 100 do
      local client, server = tcp_pair()
      assert(client:try_write("x"))
      if math.random(2) == 1 then server:close() end
    end
    for _ = 1, 1000 do assert(xpio.fdopen(0)) end
    collectgarbage()
    collectgarbage()
    assert.are.equal(before, open_fds())
  end)

  it("when descriptors run out, constructors return nil, \"Too many open files\" and leak nothing", function()
    collectgarbage()
    collectgarbage()
    local before = open_fds()
    local held, results = {}, {}
    -- no assertion until everything is released again
    local ok, err = pcall(function()
      while true do
        local s, e = xpio.socket("TCP")
        if not s then
          results.socket = e
          break
        end
        held[#held + 1] = s
        if #held > 100000 then break end
      end
      results.udp = table.pack(xpio.socket("UDP"))
      results.pipe = table.pack(xpio.pipe())
      results.socketpair = table.pack(xpio.socketpair())
      results.fdopen = table.pack(xpio.fdopen(0))
      -- one free descriptor: not enough for a pipe or a pair, enough for a socket
      table.remove(held):close()
      results.pipe1 = table.pack(xpio.pipe())
      results.socketpair1 = table.pack(xpio.socketpair())
      local s = xpio.socket("UDP")
      results.one = s ~= nil
      if s then s:close() end
    end)
    for _, s in ipairs(held) do s:close() end
    held = nil    -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.is_true(ok, tostring(err))
    assert.are.equal("Too many open files", results.socket)
    for _, name in ipairs({ "udp", "pipe", "socketpair", "fdopen", "pipe1", "socketpair1" }) do
      local r = results[name]
      assert.are.equal(2, r.n, name .. " returned " .. r.n .. " values")
      assert.is_nil(r[1], name)
      assert.are.equal("Too many open files", r[2], name)
    end
    assert.is_true(results.one)
    assert.are.equal(before, open_fds())
  end)
end)

describe("argument errors", function()
  local s
  before_each(function() s = assert(xpio.socket("TCP")) end)
  after_each(function() s:close() end)

  it("module functions name the function and the argument", function()
    raises("bad argument #1 to 'socket' (string expected, got table)", function() return xpio.socket({}) end)
    raises("bad argument #1 to 'socket' (string expected, got no value)", function() return xpio.socket() end)
    raises("bad argument #1 to 'fdopen' (number expected, got string)", function() return xpio.fdopen("x") end)
    raises("bad argument #1 to 'fdopen' (number expected, got table)", function() return xpio.fdopen({}) end)
  end)

  it("methods name the method and the argument", function()
    raises("bad argument #1 to 'bind' (string expected, got table)", function() return s:bind({}) end)
    raises("bad argument #1 to 'try_connect' (string expected, got table)", function() return s:try_connect({}) end)
    raises("bad argument #1 to 'listen' (number expected, got string)", function() return s:listen("many") end)
    raises("bad argument #1 to 'try_read' (number expected, got string)", function() return s:try_read("abc") end)
    raises("bad argument #1 to 'try_read' (number expected, got no value)", function() return s:try_read() end)
    raises("bad argument #1 to 'try_read' (number has no integer representation)", function() return s:try_read(1.5) end)
    raises("bad argument #1 to 'try_write' (data[1]: string expected, got table)", function() return s:try_write({ {} }) end)
    raises("bad argument #1 to 'try_write' (string or table expected, got boolean)", function() return s:try_write(true) end)
    raises("bad argument #1 to 'getsockopt' (string expected, got table)", function() return s:getsockopt({}) end)
    raises("bad argument #1 to 'setsockopt' (string expected, got table)", function() return s:setsockopt({}, true) end)
    raises("bad argument #1 to 'shutdown' (string expected, got table)", function() return s:shutdown({}) end)
    raises("bad argument #1 to 'when_read' (table expected, got string)", function() return s:when_read("task") end)
  end)

  it("a method called on something other than a socket names the socket argument", function()
    raises("bad argument #1 to 'bind' (xpio.socket expected, got table)", function() return s.bind({}, "127.0.0.1") end)
    raises("bad argument #1 to 'try_read' (xpio.socket expected, got nil)", function() return s.try_read(nil, 1) end)
  end)

  it("a negative read size is an error", function()
    raises("bad argument #1 to 'try_read'", function() return s:try_read(-1) end)
    raises("bad argument #1 to 'try_read'", function() return s:try_read(math.mininteger) end)
  end)
end)

-- Any allocation can run a finalizer, and a finalizer can call XPIO. While
-- XPIO pushes a call's results (each push allocates), such a call must not
-- change them: here finalizers make calls of the same kind all the time,
-- with answers of their own, while the loop checks every answer it gets.
describe("finalizers that call XPIO while it returns results", function()
  local function stress(seconds, finalizer, round)
    local mt = { __gc = finalizer }
    collectgarbage("incremental", 0, 1000)   -- a collection in every step
    local bad, rounds, deadline = 0, 0, os.clock() + seconds
    local ok, err = pcall(function()
      while os.clock() < deadline do
        for _ = 1, 8 do setmetatable({}, mt) end
        if not round() then bad = bad + 1 end
        rounds = rounds + 1
      end
    end)
    collectgarbage("incremental", 200, 100)
    collectgarbage()
    assert(ok, err)
    return bad, rounds
  end

  it("leave address lists alone", function()
    local bad, rounds = stress(0.5, function() xpio.try_resolve("localhost", "81") end, function()
      local list = xpio.try_resolve("localhost", "80")
      return #list == 2 and list[1] == "[::1]:80" and list[2] == "127.0.0.1:80"
    end)
    assert.are.equal(0, bad, bad .. " of " .. rounds .. " lists changed")
  end)

  it("leave received descriptors and their bytes alone", function()
    local c, d = assert(xpio.socketpair())
    local a, b = assert(xpio.socketpair())
    local r, w = assert(xpio.pipe())
    local bad, rounds = stress(0.5, function()
      if d:try_sendfds("y", { r, w, r, w, r }) then
        local _, got = c:try_recvfds(1, 16)
        for _, s in ipairs(got or {}) do s:close() end
      end
    end, function()
      assert(b:try_sendfds("x", { r, w }))
      local data, got = a:try_recvfds(1, 16)
      local good = data == "x" and #got == 2 and got[1]:fileno() ~= got[2]:fileno()
      for _, s in ipairs(got or {}) do s:close() end
      return good
    end)
    assert.are.equal(0, bad, bad .. " of " .. rounds .. " answers changed")
    for _, s in ipairs({ a, b, c, d, r, w }) do s:close() end
  end)
end)

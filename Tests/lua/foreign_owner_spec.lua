-- Bugs a second owner of XPIO's descriptors exposed (issue 22: LuaSec and
-- LuaSocket sharing descriptors with XPIO), each with a test that failed on
-- the module before the fix. The cases that can hang the old module run in
-- a child interpreter under `timeout`.
local xpio = require "xpio"
local helper = require "helper"

local POLL = helper.poll_backend()

-- Runs `script` in a child lua5.4 (same LUA_PATH/LUA_CPATH) killed after
-- `limit` seconds; returns its output.
local function run_bounded(script, limit)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(script)
  f:close()
  local output = helper.run_command("timeout -s KILL " .. limit .. " " .. helper.shell_quote(helper.LUA)
    .. " " .. helper.shell_quote(path))
  os.remove(path)
  return output
end

describe("a descriptor closed behind XPIO's back", function()
  it("does not hang a new socket that reuses its number", function()
    -- LuaSocket closes the number (as LuaSec would after a hand-over without
    -- detach); the next socket gets the same number and must be watched.
    local out = run_bounded([[
      local xpio = require "xpio"
      local luasocket = require "socket"
      local q = xpio.tqueue()
      local a, b = xpio.socketpair()
      local t1 = { _queue = q }
      assert(a:when_read(t1)) assert(b:write("x"))
      assert(#q:wait(10) == 1) assert(a:read(1) == "x")
      local n = a:fileno()
      local foreign = luasocket.tcp()
      foreign:setfd(n)
      foreign:close()
      local c, d = xpio.socketpair()
      assert(c:fileno() == n, "the number was not reused")
      local t2 = { _queue = q }
      assert(c:when_read(t2)) assert(d:write("y"))
      print("ready " .. #q:wait(10))
    ]], 60)
    assert.matches("ready 1", out)
  end)
end)

describe("try_ calls on a socket another owner made blocking", function()
  it("answer retry instead of blocking the process", function()
    local out = run_bounded([[
      local xpio = require "xpio"
      local a, b = xpio.socketpair()
      assert(a:setsockopt("O_NONBLOCK", false))   -- the flag belongs to the open file
      print("read", a:try_read(10))
      assert(b:setsockopt("O_NONBLOCK", false))
      local big = string.rep("x", 1 << 22)
      local n, err
      repeat n, err = b:try_write(big) until not n
      print("write", n, err)
    ]], 60)
    assert.matches("read\tnil\tretry", out)
    assert.matches("write\tnil\tretry", out)
  end)

  it("so do accept, the datagram and descriptor calls and sendfile", function()
    -- A pre-fork server hands its listener to a child by number: the child
    -- gets it blocking, and the file is the parent's too.
    local out = run_bounded([[
      local xpio = require "xpio"
      local l = assert(xpio.socket("TCP"))
      assert(l:bind("127.0.0.1:0"))
      assert(l:listen())
      local child = assert(xpio.spawn({ "/bin/sleep", "5" }, {}, { [3] = l:fileno() }))
      print("shared", l:getsockopt("O_NONBLOCK"))
      print("accept", l:try_accept())
      local c = assert(xpio.socket("TCP"))
      c:try_connect(l:getsockname())
      local accepted
      for _ = 1, 1000 do   -- loopback: the connection is there at once, or soon
        accepted = l:try_accept()
        if accepted then break end
        xpio.tqueue():wait(0.01)
      end
      print("accepted", accepted ~= nil)
      local u = assert(xpio.socket("UDP"))
      assert(u:bind("127.0.0.1:0"))
      assert(u:setsockopt("O_NONBLOCK", false))
      print("recvfrom", u:try_recvfrom(10))
      local a, b = xpio.socketpair()
      assert(a:setsockopt("O_NONBLOCK", false))
      print("recvfds", a:try_recvfds(10))
      local big = string.rep("x", 1 << 16)
      while a:try_write(big) do end
      print("sendfds", a:try_sendfds("y", { 0 }))
      local path = os.tmpname()
      local f = assert(io.open(path, "w")) f:write(string.rep("z", 1 << 20)) f:close()
      local file = assert(xpio.open(path))
      print("sendfile", a:try_sendfile(file, 0, 1 << 20))
      print("drained", #b:try_read(65536) > 0)
      local sent = a:try_sendfile(file, 0, 1 << 20)
      print("sendfile part", sent and sent > 0 and sent < (1 << 20))
      os.remove(path)
      child:kill(9) child:wait()
    ]], 60)
    assert.matches("shared\tfalse", out)   -- what the child got
    assert.matches("accept\tnil\tretry", out)
    assert.matches("accepted\ttrue", out)
    assert.matches("recvfrom\tnil\tretry", out)
    assert.matches("recvfds\tnil\tretry", out)
    assert.matches("sendfds\tnil\tretry", out)
    assert.matches("sendfile\tnil\tretry", out)
    assert.matches("sendfile part\ttrue", out)
  end)
end)

describe("an empty UDP datagram", function()
  it("reads as '' with read and try_read, not as the end of a stream", function()
    local u = assert(xpio.socket("UDP"))
    assert(u:bind("127.0.0.1:0"))
    local v = assert(xpio.socket("UDP"))
    assert(v:connect(u:getsockname()))
    assert(v:write(""))
    assert(v:write(""))
    local q = xpio.tqueue()
    local task = { _queue = q }
    assert(u:when_read(task))
    assert.are.equal(task, q:wait(10)[1])
    assert.are.equal("", u:try_read(100))
    local co = coroutine.create(function() return u:read(100) end)
    assert.are.same({ true, "" }, { coroutine.resume(co) })
    u:close() v:close()
  end)
end)

describe("process:kill(0)", function()
  it("probes whether the child is alive", function()
    local p = assert(xpio.spawn({ "sleep", "30" }))
    assert.is_true(p:kill(0))
    assert.is_true(p:kill())
    local co = coroutine.wrap(function() return p:try_wait() end)
    local q = xpio.tqueue()
    local deadline = xpio.gettime() + 30
    while co() == nil and xpio.gettime() < deadline do
      co = coroutine.wrap(function() return p:try_wait() end)
      q:wait(0.02)
    end
    assert.are.same({ nil, "No such process" }, { p:kill(0) })
    p:close()
  end)
end)

describe("a queue's fileno", function()
  it("stops being readable once a wait has delivered every ready task", function()
    if POLL then return end   -- a poll-backend queue has no descriptor
    local q = xpio.tqueue()
    local probe_queue = xpio.tqueue()
    local outer = assert(xpio.fdopen(assert(q:fileno())))
    -- What an outer loop sees: is the queue's descriptor readable now?
    local function readable()
      local t = { _queue = probe_queue }
      assert(outer:when_read(t))
      local ready = probe_queue:wait(0)
      if t._dequeue then t:_dequeue() end
      return #ready == 1
    end
    local a, b = assert(xpio.socketpair())
    local task = { _queue = q }
    assert(a:when_read(task))
    assert.is_false(readable())
    assert(b:write("x"))
    assert.is_true(readable())
    assert.are.equal(task, q:wait(0)[1])
    -- The byte is still unread, and nobody waits: no wake-up for the outer loop.
    assert.is_false(readable())
    assert(a:when_read(task))
    assert.is_true(readable(), "a task waiting again makes it readable again")
    assert.are.equal(task, q:wait(0)[1])
    a:close() b:close() outer:close() q:close() probe_queue:close()
  end)
end)

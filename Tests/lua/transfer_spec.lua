-- Fewer copies and fewer calls (issue 24): write(data, i, j) with
-- string.sub's positions, arrays of strings written with one writev, files
-- as descriptor objects (xpio.open), sendfile and splice. Runs on both
-- backends (the suite runs again with XPIO_BACKEND=poll).
local xpio = require "xpio"
local sched = require "xpio.sched"
sched.onerror(sched.raise) -- a failing assertion in a task fails the test
local helper = require "helper"

local function run_tasks(limit, ...)
  helper.run_tasks(sched, limit, { ... })
end

--- Everything `s` has now (try_read until "retry"), as one string.
local function take_now(s)
  local parts = {}
  while true do
    local data, err = s:try_read(65536)
    if not data then
      assert(err == "retry", tostring(err))
      return table.concat(parts)
    end
    parts[#parts + 1] = data
  end
end

--- A cheap checksum of a string: its length and a sum over sampled bytes
--- would miss reorderings, so a real one (Adler-32) over every byte.
local function adler32(s)
  local a, b = 1, 0
  for k = 1, #s, 4096 do
    local chunk = { s:byte(k, math.min(k + 4095, #s)) }
    for m = 1, #chunk do
      a = (a + chunk[m]) % 65521
      b = (b + a) % 65521
    end
  end
  return b * 65536 + a
end

--- Makes the file at `path` hold `content`.
local function write_file(path, content)
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
end

--- `n` bytes that differ at every position of a period longer than any buffer.
local function patterned(n)
  local parts, made = {}, 0
  local k = 0
  while made < n do
    k = k + 1
    local piece = string.format("%09d\n", k)
    parts[#parts + 1] = piece
    made = made + #piece
  end
  return table.concat(parts):sub(1, n)
end

describe("write(data, i, j)", function()
  local text = "hello, world"
  local positions = { math.mininteger, -100, -13, -12, -5, -1, 0, 1, 2, 5, 12, 13, 100, math.maxinteger }

  -- try_write(data, i, j) sends exactly text:sub(i, j), for every pair.
  local function writes_every_slice(a, b, data)
    for _, i in ipairs(positions) do
      for _, j in ipairs(positions) do
        local expected = text:sub(i, j)
        assert.are.equal(#expected, a:try_write(data, i, j), ("i=%d j=%d"):format(i, j))
        assert.are.equal(expected, take_now(b), ("i=%d j=%d"):format(i, j))
      end
    end
  end

  it("writes exactly data:sub(i, j), for every i and j string.sub takes", function()
    local a, b = xpio.socketpair()
    writes_every_slice(a, b, text)
    for _, i in ipairs(positions) do
      local expected = text:sub(i)
      assert.are.equal(#expected, a:try_write(text, i))
      assert.are.equal(expected, take_now(b))
    end
    a:close()
    b:close()
  end)

  it("takes an array of strings as their concatenation, i and j included", function()
    local a, b = xpio.socketpair()
    local parts = { "he", "", "llo", ", w", "o", "rld" }
    assert.are.equal(text, table.concat(parts))
    writes_every_slice(a, b, parts)
    assert.are.equal(0, a:try_write({}))
    assert.are.equal(4, a:try_write({ 1, 2.5 }))     -- numbers are converted, as for a string
    assert.are.equal("12.5", take_now(b))
    a:close()
    b:close()
  end)

  it("the blocking form returns the count selected, and an empty datagram is still sent", function()
    local a, b = xpio.socketpair()
    local n, m
    run_tasks(5, function()
      n = a:write(text, 8)
      m = a:write({ "ab", "cd" }, 2, -2)
    end)
    assert.are.equal(5, n)
    assert.are.equal(2, m)
    assert.are.equal("world" .. "bc", take_now(b))
    local u1 = assert(xpio.socket("UDP"))
    local u2 = assert(xpio.socket("UDP"))
    assert(u2:bind("127.0.0.1:0"))
    assert(u1:connect(u2:getsockname()))
    assert.are.equal(0, u1:try_write({ "x" }, 2))
    assert.are.equal(3, u1:try_write({ "a", "bc" }))
    assert.are.equal("", helper.poll(u2.try_read, u2, 10))
    assert.are.equal("abc", helper.poll(u2.try_read, u2, 10))
    u1:close()
    u2:close()
    a:close()
    b:close()
  end)

  it("sends an array of more strings than one system call takes as one datagram", function()
    local u1 = assert(xpio.socket("UDP"))
    local u2 = assert(xpio.socket("UDP"))
    assert(u2:bind("127.0.0.1:0"))
    assert(u1:connect(u2:getsockname()))
    local parts = {}
    for k = 1, 2000 do parts[k] = string.char(65 + k % 26) end
    assert.are.equal(2000, u1:try_write(parts))
    assert.are.equal(1990, u1:try_write(parts, 11))
    assert.are.equal(table.concat(parts), helper.poll(u2.try_read, u2, 65536))
    assert.are.equal(table.concat(parts):sub(11), helper.poll(u2.try_read, u2, 65536))
    assert.are.same({ nil, "retry" }, { u2:try_read(65536) })
    u1:close()
    u2:close()
  end)

  it("rejects arguments of the wrong type, naming them", function()
    local a, b = xpio.socketpair()
    assert.has_error(function() a:write({ "x", {} }) end, "bad argument #1 to 'write' (data[2]: string expected, got table)")
    assert.has_error(function() a:try_write("x", "y") end, "bad argument #2 to 'try_write' (number expected, got string)")
    assert.has_error(function() a:try_write("x", 1, 1.5) end, "bad argument #3 to 'try_write' (number has no integer representation)")
    a:close()
    b:close()
  end)

  it("writes an array of 1000 strings whole with the blocking form, to a slow reader", function()
    local a, b = xpio.socketpair()
    assert(a:setsockopt("SO_SNDBUF", 4096))
    local parts = {}
    for k = 1, 1000 do parts[k] = string.format("%04d:", k) .. string.rep(string.char(65 + k % 26), k % 97) end
    local whole = table.concat(parts)
    local n, got
    run_tasks(20, function()
      n = a:write(parts)
      a:close()
    end, function()
      local received = {}
      while true do
        sched.sleep(0.001)
        local data = b:read(3000)
        if not data then break end
        received[#received + 1] = data
      end
      got = table.concat(received)
    end)
    assert.are.equal(#whole, n)
    assert.is_true(got == whole, "the array arrived changed")
    b:close()
  end)

  it("try_write takes part of an array and answers the count; i carries on from there", function()
    local a, b = xpio.socketpair()
    local filled = helper.fill(a)
    local parts = {}
    for k = 1, 1000 do parts[k] = string.format("<%06d>", k) end
    local whole = table.concat(parts)
    local _, err = a:try_write(parts)
    assert.are.equal("retry", err)
    -- make a little room: the next try takes part of the array, not all
    local drained = 0
    while drained < filled do drained = drained + #assert(b:try_read(65536)) end
    local at, received = 1, {}
    local first = true
    while at <= #whole do
      local n, e = a:try_write(parts, at)
      if n then
        if first then assert.is_true(n >= 1) end
        first = false
        at = at + n
      else
        assert.are.equal("retry", e)
      end
      received[#received + 1] = take_now(b)
    end
    received[#received + 1] = take_now(b)
    assert.are.equal(whole, table.concat(received))
    a:close()
    b:close()
  end)

  it("a blocking write stopped by sched.timeout says how much of the array it wrote", function()
    local a, b = xpio.socketpair()
    local parts = {}
    for k = 1, 1000 do parts[k] = string.rep("y", 1000) end
    local r1, r2, r3
    run_tasks(10, function()
      r1, r2, r3 = sched.timeout(0.2, a.write, a, parts, 10)
    end)
    assert.is_nil(r1)
    assert.are.equal("timeout", r2)
    assert.is_true(r3 > 0 and r3 < 1000 * 1000 - 9)
    assert.are.equal(r3, helper.drain(b))
    a:close()
    b:close()
  end)
end)

describe("xpio.open", function()
  local path = os.tmpname()
  after_each(function() os.remove(path) end)

  it("opens a file as a close-on-exec descriptor object that reads and writes", function()
    local f = assert(xpio.open(path, "w"))
    local fd = f:fileno()
    assert.are.equal(helper.O_CLOEXEC, helper.fd_flags(fd) & helper.O_CLOEXEC)
    assert.are.equal(9, f:write({ "one\n", "two\n", "3" }))
    assert(f:close())
    do
      local g <close> = assert(xpio.open(path))
      assert.are.equal("one", g:readline())
      assert.are.equal("two\n3", g:readall())
      fd = g:fileno()
    end
    assert.is_nil(io.open("/proc/self/fdinfo/" .. fd), "the <close> variable closed it")
    local a = assert(xpio.open(path, "a+b"))
    assert.are.equal(2, a:write("!\n"))
    a:close()
    local check = assert(io.open(path))
    assert.are.equal("one\ntwo\n3!\n", check:read("a"))
    check:close()
  end)

  it("creates a file with the permissions asked for, less the umask", function()
    os.remove(path)
    local f = assert(xpio.open(path, "w", tonumber("600", 8)))
    f:close()
    local ls = assert(io.popen("stat -c %a " .. helper.shell_quote(path)))
    assert.are.equal("600", ls:read("l"))
    ls:close()
  end)

  it("answers nil and the C library's message when the file cannot be opened", function()
    assert.are.same({ nil, "No such file or directory" }, { xpio.open("/nonexistent/xpio-file") })
    assert.has_error(function() xpio.open(path, "rw") end,
      "bad argument #2 to 'open' (\"r\", \"w\", \"a\", \"r+\", \"w+\" or \"a+\" expected)")
    assert.has_error(function() xpio.open(path, "w", tonumber("10000", 8)) end,
      "bad argument #3 to 'open' (mode must be between 0 and 07777)")
    assert.has_error(function() xpio.open("a\0b") end, "bad argument #1 to 'open' (path must not contain NUL)")
  end)

  --- What `cat` prints, given `input` as its standard input.
  local function cat_from(input)
    local r, w = assert(xpio.pipe())
    local out
    helper.run_in_task(sched, 10, function()
      local p = assert(xpio.spawn({ "cat" }, xpio.env, { [0] = input, [1] = w }))
      out = helper.read_all(r)
      assert.are.same({ "exit", 0 }, { p:wait() })
    end)
    r:close()
    return out
  end

  it("gives a child a file as its standard input, without a shell", function()
    write_file(path, "from a file\n")
    local input = assert(xpio.open(path))
    assert.are.equal("from a file\n", cat_from(input))
    assert.are.equal("xpio.socket: closed", tostring(input))   -- handed over, as any socket object
  end)

  it("gives a child the bytes a readline had read ahead from a file; refuses a pipe holding some", function()
    local lines = {}
    for k = 1, 3000 do lines[k] = tostring(k) end
    write_file(path, table.concat(lines, "\n") .. "\n")
    local input = assert(xpio.open(path))
    assert.are.equal("1", input:try_readline())
    assert.is_true(input:buffered() > 0)
    assert.are.equal(table.concat(lines, "\n", 2) .. "\n", cat_from(input))
    local pr, pw = assert(xpio.pipe())
    assert(pw:try_write("a\nb\n"))
    assert.are.equal("a", pr:try_readline())
    assert.are.same({ nil, "xpio: the socket holds bytes it read ahead (read them, or detach it, first)" },
      { xpio.spawn({ "cat" }, xpio.env, { [0] = pr, [1] = "null" }) })
    assert.are.equal("b", pr:try_readline())   -- still here, and still ours
    pr:close()
    pw:close()
  end)
end)

describe("socket:sendfile", function()
  local path = os.tmpname()
  local SIZE = 6 * 1024 * 1024 + 123
  local content = patterned(SIZE)
  setup(function()
    write_file(path, content)
  end)
  teardown(function() os.remove(path) end)

  --- Reads `s` to the end of the stream in a task, slowly at first.
  local function slow_read_all(s)
    local parts, k = {}, 0
    while true do
      k = k + 1
      if k <= 20 then sched.sleep(0.005) end
      local data, err = s:read(65536)
      if not data then
        assert.is_nil(err)
        return table.concat(parts)
      end
      parts[#parts + 1] = data
    end
  end

  it("sends a file bigger than the socket buffer whole, with an offset and a count, to a slow reader", function()
    local a, b = helper.tcp_pair()
    assert(a:setsockopt("SO_SNDBUF", 65536))
    local file = assert(xpio.open(path))
    local offset, count = 1000, SIZE - 5000
    local sent, got
    run_tasks(60, function()
      sent = assert(sched.timeout(30, a.sendfile, a, file, offset, count))
      a:close()
    end, function()
      got = slow_read_all(b)
    end)
    assert.are.equal(count, sent)
    assert.are.equal(count, #got)
    assert.are.equal(adler32(content:sub(offset + 1, offset + count)), adler32(got))
    assert.is_true(got == content:sub(offset + 1, offset + count))
    -- the file's own position is left alone
    assert.are.equal(content:sub(1, 10), file:read(10))
    file:close()
    b:close()
  end)

  it("sends up to the file's end without a count; try_sendfile answers one call's count, 0 at the end", function()
    local a, b = xpio.socketpair()
    local file = assert(xpio.open(path))
    local got
    run_tasks(60, function()
      assert.are.equal(SIZE - 10, a:sendfile(file, 10))
      a:close()
    end, function()
      got = slow_read_all(b)
    end)
    assert.is_true(got == content:sub(11), "the file arrived changed")
    local c, d = xpio.socketpair()
    local n = assert(c:try_sendfile(file, SIZE - 3))
    assert.are.equal(3, n)
    assert.are.equal(content:sub(-3), take_now(d))
    assert.are.equal(0, c:try_sendfile(file, SIZE))
    assert.are.equal(0, c:try_sendfile(file, SIZE + 100, 5))
    helper.fill(c)
    assert.are.same({ nil, "retry" }, { c:try_sendfile(file, 0, 100) })
    for _, s in ipairs({ file, b, c, d }) do s:close() end
  end)

  it("a blocking sendfile stopped by sched.timeout says how much it sent", function()
    local a, b = xpio.socketpair()
    local file = assert(xpio.open(path))
    local r1, r2, r3
    run_tasks(10, function() r1, r2, r3 = sched.timeout(0.2, a.sendfile, a, file) end)
    assert.is_nil(r1)
    assert.are.equal("timeout", r2)
    assert.is_true(r3 > 0 and r3 < SIZE)
    assert.are.equal(r3, helper.drain(b))
    assert.are.same({ nil, "xpio: socket is closed" }, { (function() file:close() return a:try_sendfile(file) end)() })
    a:close()
    b:close()
  end)

  it("answers 0 for any offset at or past the file's end, however large", function()
    local a, b = xpio.socketpair()
    local file = assert(xpio.open(path))
    for _, offset in ipairs({ SIZE, SIZE + 1, 1 << 40, 1 << 62, math.maxinteger }) do
      assert.are.equal(0, a:try_sendfile(file, offset, 10))
    end
    file:close()
    a:close()
    b:close()
  end)

  it("refuses to send a file into itself, which would grow for ever", function()
    local copy = os.tmpname()
    local w = assert(xpio.open(copy, "a"))
    assert.are.equal(5, w:write("12345"))
    local r = assert(xpio.open(copy))
    assert.are.same({ nil, "xpio: the file is the output itself" }, { w:try_sendfile(r) })
    w:close()
    r:close()
    os.remove(copy)
  end)
end)

describe("xpio.splice", function()
  local MIB = 1024 * 1024
  local SIZE = 64 * MIB
  local block = patterned(65537)     -- a period no buffer size divides
  local content = block:rep(SIZE // #block + 1):sub(1, SIZE)

  --- Writes all of `content` to `s` in 1 MiB pieces, then closes it.
  local function produce(s)
    for at = 1, SIZE, MIB do assert(s:write(content, at, at + MIB - 1)) end
    s:close()
  end

  --- Moves everything from `from` to `to` with the blocking splice; the
  --- end of the stream is one nil, passed on by closing `to`.
  local function forward(from, to)
    local total = 0
    while true do
      local n, err = xpio.splice(from, to)
      if n == nil then
        assert.is_nil(err)
        break
      end
      assert.is_true(n > 0)
      total = total + n
    end
    to:close()
    return total
  end

  --- Reads `s` to the end, checking every piece against `content` byte for
  --- byte; returns the count read.
  local function consume(s)
    local at = 1
    while true do
      local data, err = s:read(65536)
      if not data then
        assert.is_nil(err)
        s:close()
        return at - 1
      end
      assert(data == content:sub(at, at + #data - 1), "the bytes differ near " .. at)
      at = at + #data
    end
  end

  it("forwards 64 MiB socket -> pipe -> socket, unchanged, and passes the end of the stream on", function()
    local a, b = helper.tcp_pair()
    local pr, pw = assert(xpio.pipe())
    local c, d = helper.tcp_pair()
    local moved1, moved2, got
    run_tasks(120, function() produce(a) end,
      function() moved1 = forward(b, pw) end,
      function() moved2 = forward(pr, c) end,
      function() got = consume(d) end)
    assert.are.equal(SIZE, moved1)
    assert.are.equal(SIZE, moved2)
    assert.are.equal(SIZE, got)
    b:close()
    pr:close()
  end)

  it("forwards 64 MiB socket -> socket, buffered bytes first", function()
    local a, b = helper.tcp_pair()
    local c, d = helper.tcp_pair()
    local moved, got, first
    run_tasks(120, function()
      assert(a:write("header\n"))
      produce(a)
    end, function()
      first = b:readline()           -- keeps what came after the line
      moved = forward(b, c)
    end, function() got = consume(d) end)
    assert.are.equal("header", first)
    assert.are.equal(SIZE, moved)
    assert.are.equal(SIZE, got)
    b:close()
  end)

  it("try_splice answers retry, a count, a single nil at the end; count 0 moves nothing", function()
    local a, b = xpio.socketpair()
    local c, d = xpio.socketpair()
    assert.are.same({ nil, "retry" }, { xpio.try_splice(b, c) })
    assert(a:try_write("abcdef"))
    assert.are.equal(0, xpio.try_splice(b, c, 0))
    assert.are.equal(2, xpio.try_splice(b, c, 2))
    assert.are.equal(4, xpio.try_splice(b, c))
    assert.are.equal("abcdef", take_now(d))
    -- bytes the output could not take wait in the pipe, in order, for the next splice
    local filled = helper.fill(c)
    assert(a:try_write("xyz"))
    assert.are.same({ nil, "retry" }, { xpio.try_splice(b, c) })
    assert.are.equal(filled, helper.drain(d))
    assert.are.equal(3, xpio.try_splice(b, c))
    assert.are.equal("xyz", take_now(d))
    a:close()
    assert.are.same({ nil }, { xpio.try_splice(b, c) })
    assert.are.same({ nil, "xpio: socket is closed" }, { xpio.try_splice(a, c) })
    for _, s in ipairs({ b, c, d }) do s:close() end
  end)

  it("keeps what the output did not take where every read of the source sees it, in order", function()
    local a, b = xpio.socketpair()
    local c, d = xpio.socketpair()
    helper.fill(c)
    assert(a:try_write("first\n"))
    assert.are.same({ nil, "retry" }, { xpio.try_splice(b, c) })
    assert.are.equal(6, b:buffered())
    assert(a:try_write("second\n"))
    assert.are.equal("first", b:try_readline())
    assert.are.equal("second", b:try_readline())
    -- and detach hands the kept bytes over with the descriptor
    helper.drain(d)
    helper.fill(c)
    assert(a:try_write("kept"))
    assert.are.same({ nil, "retry" }, { xpio.try_splice(b, c) })
    local fd, kept = b:detach()
    assert.are.equal("kept", kept)
    local again = assert(xpio.adopt(fd))
    assert.are.same({ nil, "retry" }, { again:try_read(10) })
    for _, s in ipairs({ a, again, c, d }) do s:close() end
  end)

  it("reads what the output did not take before the socket's own bytes, and never waits on the socket for it", function()
    local a, b = xpio.socketpair()
    local c, d = xpio.socketpair()
    assert.are.same({ nil, "retry" }, { b:try_read(10) })   -- a short read: blocking reads would wait first
    helper.fill(c)
    assert(a:try_write("held\n"))
    assert.are.same({ nil, "retry" }, { xpio.try_splice(b, c) })
    -- readable at once, though the socket itself holds nothing now
    local q = xpio.tqueue()
    local task = { _queue = q }
    assert(b:when_read(task))
    assert.are.same({ task }, q:wait(0))
    assert(a:try_write("next\n"))
    assert.are.equal("he", b:try_read(2))
    -- a splice sends the rest of what it left first, then the socket's bytes
    helper.drain(d)
    assert.are.equal(3, xpio.try_splice(b, c))
    assert.are.equal(5, xpio.try_splice(b, c))
    assert.are.equal("ld\nnext\n", take_now(d))
    -- a blocking readline after a short read takes what a splice left at once
    assert.are.same({ nil, "retry" }, { b:try_read(10) })
    helper.fill(c)
    assert(a:try_write("line\n"))
    assert.are.same({ nil, "retry" }, { xpio.try_splice(b, c) })
    local line
    run_tasks(10, function() line = b:readline() end)
    assert.are.equal("line", line)
    for _, s in ipairs({ a, b, c, d }) do s:close() end
  end)

  it("moves bytes into a file opened to append, which refuses splice(2)", function()
    local path = os.tmpname()
    local a, b = xpio.socketpair()
    local log = assert(xpio.open(path, "a"))
    assert(a:try_write("line 1\n"))
    assert.are.equal(7, xpio.try_splice(b, log))
    assert(a:try_write("line 2\n"))
    assert.are.equal(7, xpio.try_splice(b, log))
    assert.are.same({ nil, "retry" }, { xpio.try_splice(b, log) })
    log:close()
    local f = assert(io.open(path))
    assert.are.equal("line 1\nline 2\n", f:read("a"))
    f:close()
    os.remove(path)
    a:close()
    b:close()
  end)
end)

describe("blocking reads after a short read", function()
  it("wait for readability first, yet serve pipelined requests already buffered at once", function()
    local a, b = helper.tcp_pair()
    local answers = {}
    run_tasks(10, function()
      -- the server: a line per request, an answer per line
      while true do
        local line = b:readline()
        if not line then break end
        assert(b:write("ok " .. line .. "\n"))
      end
      b:close()
    end, function()
      assert(a:write("one\ntwo\nthree\n"))         -- pipelined: one segment
      for _ = 1, 3 do answers[#answers + 1] = a:readline() end
      sched.sleep(0.02)                            -- the server's next read finds nothing
      assert(a:write("four\n"))
      answers[#answers + 1] = a:readline()
      a:close()
    end)
    assert.are.same({ "ok one", "ok two", "ok three", "ok four" }, answers)
  end)

  it("leave try_ calls and reads outside a task asking the kernel at once", function()
    local a, b = xpio.socketpair()
    assert(a:write("x"))
    local first
    run_tasks(5, function() first = b:read(10) end)     -- short: 1 of 10
    assert.are.equal("x", first)
    assert(a:write("y"))
    assert.are.equal("y", b:try_read(10))
    assert(a:write("z"))
    assert.are.equal("z", b:read(10))                  -- no task to wait in: it just tries
    a:close()
    b:close()
  end)

  it("do not wait on a file, which cannot be waited on", function()
    local path = os.tmpname()
    write_file(path, "abc")
    local file = assert(xpio.open(path))
    local got = {}
    run_tasks(5, function()
      got[1] = file:read(10)      -- short
      got[2] = file:read(10)      -- the end: nil, not a failed wait
      got[3] = "done"
    end)
    assert.are.same({ "abc", nil, "done" }, got)
    file:close()
    os.remove(path)
  end)
end)

-- OOM scenario: buffered reads. Lines, a delimiter, exact sizes and the
-- rest of the stream, read with the try_ forms from data written before:
-- each read finds what it needs in the socket or in the buffer a previous
-- read left. Lines are longer than 40 bytes, so pushing one allocates.
local xpio = require "xpio"
local oom = require "oomlib"
local retry, check = oom.retry, oom.check

return function()
  local q = retry(xpio.tqueue)
  local a, b = retry(xpio.socketpair)
  assert(a and b, "socketpair")

  local lines = {}
  for i = 1, 6 do lines[i] = string.rep(string.char(96 + i), 44 + i) end
  local text = table.concat(lines, "\n", 1, 3) .. "\r\n" .. table.concat(lines, "\n", 4, 6) .. "\n"
    .. string.rep("u", 50) .. "<END>" .. string.rep("e", 64) .. string.rep("z", 70)
  assert(oom.complete(q, a, "try_write", "when_write", text))
  assert(retry(a.shutdown, a, "w"))

  -- A read answers its value, or, after a memory error in it, may have lost
  -- it: the failed call had taken the value from the buffer before pushing
  -- it failed, and the retry answers the next value (or "retry", see
  -- oomlib.read). That is noted, not failed; after it the stream's position
  -- is unknown, so the reads stop.
  local function expect(name, wanted, x, y)
    local got, err = oom.read(q, b, name, x, y)
    if err == oom.LOST then error("lost", 0) end
    if got ~= wanted and oom.read_failed then
      oom.note(name .. ": a value lost when pushing it failed (the retry returned the next one)")
      error("lost", 0)
    end
    check(got == wanted, name .. ": got " .. tostring(got) .. ", " .. tostring(err))
  end

  local ok, err = pcall(function()
    for i = 1, 6 do expect("try_readline", lines[i]) end
    expect("try_readuntil", string.rep("u", 50), "<END>")
    expect("try_readexactly", string.rep("e", 64), 64)
    expect("try_readall", string.rep("z", 70))
    local last = { retry(b.try_readline, b) }
    check(last[1] == nil and last[2] == nil, "readline at the end of the stream")
  end)
  if not ok and err ~= "lost" then error(err, 0) end

  -- A line too long, and an unfinished one at the end of the stream.
  local c, d = retry(xpio.socketpair)
  assert(c and d, "socketpair")
  assert(oom.complete(q, c, "try_write", "when_write", string.rep("x", 100) .. "\n" .. string.rep("p", 50)))
  assert(retry(c.shutdown, c, "w"))
  local none, long = retry(d.try_readline, d, false, 64)
  check(none == nil and long == "xpio: line too long", "line too long: " .. tostring(long))
  for _, s in ipairs({ a, b, c, d }) do retry(s.close, s) end
end

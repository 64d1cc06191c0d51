-- OOM scenario: the transfers of issue 24. write and try_write with i, j
-- and with an array of strings (its decoded list is allocated), a file
-- opened with xpio.open (its object), sendfile from it, and splice between
-- two socketpairs with when_splice, bytes a readline kept going first, and
-- bytes a full output left in the splice pipe read before the socket's.
local xpio = require "xpio"
local oom = require "oomlib"
local retry, check = oom.retry, oom.check

-- run.sh names the file (in build/oom): every run writes the same bytes there.
local path = assert(os.getenv("XPIO_OOM_FILE"), "XPIO_OOM_FILE: the file sendfile sends")
local file_text = string.rep("file contents, sent by sendfile ", 3)
do
  local f = assert(io.open(path, "w"))
  f:write(file_text)
  f:close()
end

return function()
  local q = retry(xpio.tqueue)
  local a, b = retry(xpio.socketpair)
  assert(a and b, "socketpair")

  -- Reads what `text` is, all of it, from `s` (see oomlib.read for the
  -- bytes a memory error may lose); false when some were lost.
  local function expect(s, text, what)
    local got = ""
    while #got < #text do
      local data, e = oom.read(q, s, "try_read", 4096)
      if e == oom.LOST then return false end
      assert(data, e)
      got = got .. data
    end
    check(got == text, what .. ": got " .. got)
    return true
  end

  local parts = { string.rep("first part ", 4), "", string.rep("second part ", 4), string.rep("third ", 8) }
  local whole = table.concat(parts)
  check(retry(a.try_write, a, parts) == #whole, "try_write of an array")
  if not expect(b, whole, "array") then return end
  check(retry(a.try_write, a, parts, 5, -5) == #whole - 8, "try_write of an array, i and j")
  if not expect(b, whole:sub(5, -5), "array, i and j") then return end
  check(retry(a.try_write, a, whole, -20) == 20, "try_write with i")
  if not expect(b, whole:sub(-20), "string, i") then return end

  local file = assert(retry(xpio.open, path))
  check(retry(file.fileno, file) >= 0, "fileno")
  local sent = oom.complete(q, a, "try_sendfile", "when_write", file, 5)
  check(sent == #file_text - 5, "try_sendfile: " .. tostring(sent))
  if not expect(b, file_text:sub(6), "sendfile") then return end
  assert(retry(file.close, file))

  -- splice: b's readline keeps what follows the line; those bytes go first.
  local c, d = retry(xpio.socketpair)
  assert(c and d, "socketpair")
  local line, rest = string.rep("a line ", 7), string.rep("kept after the line ", 3)
  assert(oom.complete(q, a, "try_write", "when_write", line .. "\n" .. rest))
  local got, e = oom.read(q, b, "try_readline")
  if e == oom.LOST then return end
  check(got == line, "readline: " .. tostring(got))
  local task = { _queue = q }
  local moved = 0
  while moved < #rest do
    local n, err = retry(xpio.try_splice, b, c)
    if n then
      moved = moved + n
    else
      check(err == "retry", "try_splice: " .. tostring(err))
      oom.retry_checked(function() check(not oom.scheduled(task), "a failed when_splice left its task scheduled") end,
        xpio.when_splice, task, b, c)
      oom.wait_for(q, task)
    end
  end
  if not expect(d, rest, "splice") then return end

  -- What a full output does not take stays in b's splice pipe: b's next
  -- read takes it first, then what b's socket holds.
  local chunk = string.rep("x", 65536)
  while retry(c.try_write, c, chunk) do end
  local held = string.rep("held in the pipe ", 4)
  assert(oom.complete(q, a, "try_write", "when_write", held))
  local n, err = retry(xpio.try_splice, b, c)
  check(n == nil and err == "retry", "try_splice to a full output: " .. tostring(n or err))
  assert(oom.complete(q, a, "try_write", "when_write", "after\n"))
  got, e = oom.read(q, b, "try_readline")
  if e == oom.LOST then return end
  check(got == held .. "after", "readline after a splice left bytes: " .. tostring(got))
  while retry(d.try_read, d, 65536) do end
  assert(retry(a.close, a))
  check(retry(xpio.try_splice, b, c) == nil, "splice at the end of the stream")

  for _, s in ipairs({ b, c, d }) do assert(retry(s.close, s)) end
  assert(retry(q.close, q))
end

-- The naive chat server of issue 21: each connection's reader writes every
-- line it reads straight to every other client, so many tasks write to one
-- socket at once. Lines up to 64 KiB must arrive intact, each exactly once.
-- (The first design a user writes; it corrupted lines before blocking
-- writes on one socket took turns: Sources/CLua/blocking.c.)
local xpio = require "xpio"
local helper = require "helper"

local CLIENTS = tonumber(os.getenv("XPIO_CHAT_CLIENTS")) or 200
local LINES = 2                     -- per client

--- The `j`th line of client `c`: a header, then filler of a size that is
--- mostly small and, for one line in 40, 64 KiB.
local function line_of(c, j)
  local n = c * LINES + j
  local size = n % 40 == 0 and 65536 or (n * 7919) % 1500
  local header = ("from %d line %d size %d|"):format(c, j, size)
  local filler = string.char(97 + n % 26)
  return header .. filler:rep(size) .. "\n"
end

describe("a naive chat server", function()
  it(("relays %d lines among %d clients, every line intact"):format(CLIENTS * LINES, CLIENTS), function()
    collectgarbage()
    local fds = helper.open_fds()
    local sched = helper.fresh_sched()
    local server, addr = helper.listener(nil, nil, 1024)
    local clients = {}            -- server side: connection -> true
    local joined = 0
    local everyone = sched.condition()
    local problems = {}

    local function serve(conn)
      -- small buffers: a 64 KiB line needs many waits to go out, so the
      -- writes of several readers to one client overlap in time
      assert(conn:setsockopt("SO_SNDBUF", 4096))
      clients[conn] = true
      joined = joined + 1
      if joined == CLIENTS then everyone:broadcast() end
      for line in conn:lines(true) do
        for other in pairs(clients) do
          if other ~= conn then other:write(line) end     -- the naive part: no queue, no lock
        end
      end
      clients[conn] = nil
      conn:close()
    end

    local acceptor = sched.spawn(function()
      for _ = 1, CLIENTS do sched.spawn(serve, assert(server:accept())) end
      server:close()
    end)

    local finished = 0
    local tasks = { acceptor }
    for c = 1, CLIENTS do
      tasks[#tasks + 1] = sched.spawn(function()
        local s = assert(xpio.socket("TCP"))
        assert(s:setsockopt("SO_RCVBUF", 4096))
        assert(s:connect(addr))
        if joined < CLIENTS then everyone:wait() end
        local writer = sched.spawn(function()
          for j = 1, LINES do assert(s:write(line_of(c, j))) end
        end)
        local seen, expected = {}, (CLIENTS - 1) * LINES
        for _ = 1, expected do
          local line = assert(s:readline(true, 1 << 20))
          local from, j = line:match("^from (%d+) line (%d+) ")
          from, j = tonumber(from), tonumber(j)
          local key = tostring(from) .. ":" .. tostring(j)
          if not from or line ~= line_of(from, j) then
            problems[#problems + 1] = ("client %d got a corrupted line (%d bytes): %q"):format(c, #line, line:sub(1, 60))
          elseif seen[key] or from == c then
            problems[#problems + 1] = ("client %d got %s twice or its own"):format(c, key)
          end
          seen[key] = true
        end
        sched.join(writer)
        finished = finished + 1
        s:close()                 -- its server reader sees the end of the stream and ends
      end)
    end
    helper.run_until(sched, 300, function() return helper.all_done(tasks) and next(clients) == nil end)
    assert.are.same({}, problems)
    assert.are.equal(CLIENTS, finished)
    clients, tasks = nil, nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.is_true(helper.open_fds() <= fds + 1, "descriptors left: " .. helper.open_fds() - fds)
  end)
end)

-- pingpong N [K]: N one-byte round trips over TCP loopback, non-blocking
-- sockets driven by a socket.select loop, with K idle descriptors (TCP
-- connections) also in the read set. Prints round trips/s, or `cannot`
-- when select() cannot take that many descriptors.
local socket = require "socket"
local bench = require "bench"

local n, idle = bench.int(1, 10000), bench.int(2, 0)
local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()

local function tcp_pair()
  local c = assert(socket.connect("127.0.0.1", port))
  local a = assert(server:accept())
  return c, a
end

local cli, srv = tcp_pair()
local watched = { cli, srv }
for _ = 1, idle // 2 do
  local c, a = tcp_pair()
  watched[#watched + 1] = c
  watched[#watched + 1] = a
end
for _, s in ipairs(watched) do
  s:settimeout(0)
  assert(s:setoption("tcp-nodelay", true))
end

local ok, err = pcall(socket.select, watched, nil, 0)
if not ok and tostring(err):find("descriptor too large", 1, true) then
  bench.cannot("select() takes only descriptors below FD_SETSIZE (" .. socket._SETSIZE .. ")")
end
assert(ok, err)

local count = 0
local handlers = {}
-- The echo side: read what is there and send it back.
handlers[srv] = function()
  while true do
    local data, e = srv:receive(1)
    if not data then assert(e == "timeout", e) return end
    assert(srv:send(data) == 1)
  end
end
-- The client side: count each reply and send the next byte.
handlers[cli] = function()
  while count < n do
    local data, e = cli:receive(1)
    if not data then assert(e == "timeout", e) return end
    bench.check(data == "x", "got %q", data)
    count = count + 1
    if count < n then assert(cli:send("x") == 1) end
  end
end

local t0 = socket.gettime()
assert(cli:send("x") == 1)
while count < n do
  local readable = socket.select(watched, nil, bench.TIMEOUT)
  bench.check(#readable > 0, "timed out after %d round trips", count)
  for _, s in ipairs(readable) do
    bench.check(handlers[s], "an idle descriptor became readable")
    handlers[s]()
  end
end
local dt = socket.gettime() - t0
bench.result(n / dt)

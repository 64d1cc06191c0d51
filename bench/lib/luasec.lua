--- What the LuaSec TLS rows share (bench/luasec/tls_*.lua): the contexts
--- (TLS 1.3, the client verifying the server's chain against DIR/ca.pem;
--- LuaSec checks no host name) and both ends' handshakes on non-blocking
--- sockets, driven by socket.select as the LuaSocket rows are.
local socket = require "socket"
local ssl = require "ssl"
local bench = require "bench"

local luasec = {}

--- The client and server contexts for the certificates in `dir`.
function luasec.contexts(dir)
  local client = assert(ssl.newcontext({ mode = "client", protocol = "tlsv1_3", verify = "peer",
    cafile = dir .. "/ca.pem" }))
  local server = assert(ssl.newcontext({ mode = "server", protocol = "tlsv1_3",
    certificate = dir .. "/cert.pem", key = dir .. "/key.pem" }))
  return client, server
end

--- What a LuaSec error waits for: "wantread" readable, "wantwrite" writable,
--- "timeout" (LuaSocket's own word) the operation's natural direction.
function luasec.want(err, natural)
  if err == "wantwrite" then return "w" elseif err == "wantread" then return "r" end
  assert(err == "timeout", err)
  return natural or "r"
end

--- Both handshakes: each end is tried once, then again when its socket is
--- ready as TLS asked.
function luasec.handshake(client, server_end)
  local ends, waits, left = { client, server_end }, {}, 2
  local ready = { [client] = true, [server_end] = true }
  while true do
    for _, conn in ipairs(ends) do
      if ready[conn] and waits[conn] ~= false then
        local done, err = conn:dohandshake()
        if done then waits[conn], left = false, left - 1 else waits[conn] = luasec.want(err) end
      end
    end
    if left == 0 then return end
    local r, w = {}, {}
    for _, conn in ipairs(ends) do
      if waits[conn] == "r" then r[#r + 1] = conn elseif waits[conn] == "w" then w[#w + 1] = conn end
    end
    local readable, writable = socket.select(r, w, bench.TIMEOUT)
    bench.check(#readable + #writable > 0, "timed out in the handshake")
    ready = {}
    for _, conn in ipairs(readable) do ready[conn] = true end
    for _, conn in ipairs(writable) do ready[conn] = true end
  end
end

return luasec

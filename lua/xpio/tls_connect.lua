--- xpio.tls.connect(addr, [context], [options]): the one-call TLS client.
--- What it takes and returns is the spec's (Spec/tls.spec, `function
--- connect`; docs/API.md): the glue checks the arguments, then loads this
--- module and calls it. This file is the how: connect, wrap, handshake,
--- each a blocking call of XPIO's, so a scheduler's timeout bounds them.
local xpio = require "xpio"
local tls = require "xpio.tls"

local default_context -- tls.client(), made on first use

--- The host part of an address: "[::1]:443" -> "::1", "example.org:443" -> "example.org".
local function host_of(addr)
  if addr:match("^unix:") then return nil end   -- no host in it: options.host names the peer
  return addr:match("^%[([^%]]*)%]") or addr:match("^(.*):[^:]*$") or addr
end

return function(addr, context, options)
  local host = options and rawget(options, "host") or host_of(addr)
  -- A Unix address needs a unix socket; an inet6 socket reaches IPv4
  -- addresses too (mapped), so a name may resolve to either.
  local family = addr:match("^unix:") and "unix" or addr:match("^%d+%.%d+%.%d+%.%d+") and "inet" or "inet6"
  if not context then
    if not default_context then
      local made, err = tls.client()
      if not made then return nil, err end
      default_context = made
    end
    context = default_context
  end
  local s, err = xpio.socket("TCP", family)
  if not s then return nil, err end
  local ok
  ok, err = s:connect(addr)
  if ok then
    ok, err = tls.wrap(s, context, {
      host = host,
      alpn = options and rawget(options, "alpn"),
      session = options and rawget(options, "session"),
    })
  end
  if ok then ok, err = s:handshake() end
  if not ok then
    s:close()
    return nil, err
  end
  return s
end

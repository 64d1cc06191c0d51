-- An HTTPS client: GET a URL over xpio.tls and print the status line and
-- the length of the body.
--
--   lua5.4 examples/https_get.lua https://host[:port][/path] [cafile]
--
-- tls.connect resolves the name, connects, wraps the socket and completes
-- the handshake, checking the server's certificate against the system's
-- CAs (or `cafile`) and the host name of the URL. The whole exchange runs
-- under sched.timeout, so a server that stalls cannot hang the client. The
-- body is read by its Content-Length, by chunks (Transfer-Encoding:
-- chunked), or to the end of the stream.
--
--   LUA_CPATH="build/?.so;;" LUA_PATH="lua/?.lua;;" lua5.4 examples/https_get.lua https://example.org/
local tls = require "xpio.tls"
local sched = require "xpio.sched"

local TIMEOUT = 30   -- seconds for the whole request

local url, cafile = arg[1], arg[2]
if not url then
  io.stderr:write("usage: lua5.4 examples/https_get.lua https://host[:port][/path] [cafile]\n")
  os.exit(2)
end

-- https://host[:port][/path], host a name, an IPv4 address or [IPv6]
local function parse(u)
  local rest = u:match("^https://(.+)$")
  if not rest then return nil end
  local host, port, path = rest:match("^(%[[^%]]+%]):?(%d*)(.*)$")
  if not host then host, port, path = rest:match("^([^/:]+):?(%d*)(.*)$") end
  if not host then return nil end
  if path == "" then path = "/" end
  if path:sub(1, 1) ~= "/" then return nil end
  return host, port ~= "" and tonumber(port) or 443, path
end

local host, port, path = parse(url)
if not host then
  io.stderr:write("https_get: not an https URL: ", url, "\n")
  os.exit(2)
end

-- Reads the body as the headers say; returns it, or nil, message.
local function read_body(s, headers)
  if (headers["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    local parts = {}
    while true do
      local line, err = s:readline()
      if not line then return nil, err or "end of stream in a chunk size" end
      local size = tonumber(line:match("^%x+"), 16)
      if not size then return nil, "bad chunk size: " .. line end
      if size == 0 then
        repeat line = s:readline() until not line or line == ""   -- trailers
        return table.concat(parts)
      end
      local chunk, cerr = s:readexactly(size)
      if not chunk then return nil, cerr or "end of stream in a chunk" end
      parts[#parts + 1] = chunk
      s:readline()   -- the CRLF after the chunk
    end
  end
  local length = tonumber(headers["content-length"] or "")
  if length then
    if length == 0 then return "" end
    local body, err = s:readexactly(length)
    if not body then return nil, err or "end of stream in the body" end
    return body
  end
  return s:readall()
end

local function get()
  local ctx = assert(tls.client(cafile and { ca = cafile } or nil))
  local s, err = tls.connect(host .. ":" .. port, ctx)
  if not s then return nil, err end
  local conn <close> = s
  local authority = host .. (port == 443 and "" or ":" .. port)
  local ok, werr = conn:write(("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: xpio-https_get\r\nAccept: */*\r\n"
    .. "Connection: close\r\n\r\n"):format(path, authority))
  if not ok then return nil, werr end
  local status, serr = conn:readline()
  if not status then return nil, serr or "the server closed without an answer" end
  local headers = {}
  while true do
    local line, herr = conn:readline()
    if not line then return nil, herr or "end of stream in the headers" end
    if line == "" then break end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then headers[name:lower()] = value end
  end
  local body, berr = read_body(conn, headers)
  if not body then return nil, berr end
  conn:tls_shutdown()
  return status, body, conn:tlsinfo()
end

local exit_code = 0
sched.spawn(function()
  local status, body, info = sched.timeout(TIMEOUT, get)
  if not status then
    io.stderr:write("https_get: ", tostring(body), "\n")
    exit_code = 1
    return
  end
  print(status)
  print(("body: %d bytes (%s, %s)"):format(#body, info.version, info.cipher))
end)
sched.run()
os.exit(exit_code)

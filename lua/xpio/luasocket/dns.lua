--- xpio.luasocket.dns: socket.dns on XPIO's resolver, which runs
--- getaddrinfo on a worker thread: a task yields while a name resolves.
local common = require "xpio.luasocket.common"

local dns = {}

local function hosts(name, family)
  local list, err = common.resolve(name, 0, family)
  if not list then return nil, err end
  local seen, out = {}, {}
  for _, address in ipairs(list) do
    local host, _, fam = common.split(address)
    if not seen[host] then
      seen[host] = true
      out[#out + 1] = { addr = host, family = fam }
    end
  end
  return out
end

--- The first IPv4 address of `name` and a resolved table
--- { name, alias = {}, ip = {...} } (LuaSocket uses gethostbyname, IPv4 only).
function dns.toip(name)
  local list, err = hosts(tostring(name), "inet")
  if not list then return nil, err end
  local ips = {}
  for i, entry in ipairs(list) do ips[i] = entry.addr end
  return ips[1], { name = name, alias = {}, ip = ips }
end

--- Every address of `name`: { { addr = "::1", family = "inet6" }, ... }.
function dns.getaddrinfo(name)
  return hosts(tostring(name), nil)
end

function dns.gethostname()
  local f = io.open("/proc/sys/kernel/hostname")
  if not f then return nil, "xpio.luasocket: no host name" end
  local name = f:read("l")
  f:close()
  return name
end

--- Reverse lookups are not in XPIO's resolver.
function dns.tohostname() return nil, "xpio.luasocket: reverse lookups are not supported" end
dns.getnameinfo = dns.tohostname

return dns

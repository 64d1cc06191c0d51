--- The address format as the documentation states it (the socket object's
--- doc in Spec/socket.spec, docs/API.md), written from those rules and not
--- from XPIO's code, so that the fuzz driver can judge random and mutated
--- addresses and compare its verdict with `bind` and `getsockname`.
---
---   IPv4   "a.b.c.d:port"; the address may be one number (up to 2^32-1),
---          or empty (0.0.0.0); the port (0..65535) may be left out, with
---          or without the ':'. Octets 0..255, exactly four when dotted.
---          Numbers are decimal digits; leading zeros do not count.
---   IPv6   always in brackets: "[addr]", "[addr]:", "[addr]:port", the
---          address as inet_pton takes it (RFC 4291 text: eight groups of
---          1-4 hex digits, one "::" for a run of zero groups, a dotted
---          IPv4 tail without leading zeros), then "%scope": an interface
---          name that exists, or a decimal number.
---   Unix   "unix:" then nothing (unnamed), "@name" (abstract: up to 107
---          bytes after the @), or a path (no NUL, up to 107 bytes).
---   names  "host:service": labels of letters, digits and '-' joined by
---          dots, the last starting with a letter; the service a port or a
---          name of letters, digits and '-' (not all digits).
local oracle = {}

local random = math.random
local function chance(p) return random() < p end
local function pick(list) return list[random(#list)] end

--- A decimal number up to `max` (leading zeros allowed), or nil.
local function decimal(text, max)
  if text == "" or text:find("[^0-9]") then return nil end
  local digits = text:gsub("^0+", "")
  if digits == "" then return 0 end
  if #digits > #tostring(max) then return nil end
  local value = math.tointeger(tonumber(digits))
  if not value or value > max then return nil end
  return value
end

local MAX_HOST = 4294967295

function oracle.dotted(host)
  return string.format("%d.%d.%d.%d", host >> 24 & 255, host >> 16 & 255, host >> 8 & 255, host & 255)
end

--- The network interfaces this machine has (for scope names).
local interfaces = (function()
  local found = {}
  local p = io.popen("ls /sys/class/net 2>/dev/null")
  if p then
    for name in p:read("a"):gmatch("%S+") do found[name] = true end
    p:close()
  end
  found.lo = true
  return found
end)()

-- Host names --------------------------------------------------------------

local function is_host_name(host)
  if #host == 0 or #host > 253 then return false end
  local last
  for label in (host .. "."):gmatch("([^.]*)%.") do
    if #label == 0 or #label > 63 or not label:find("^[%w%-]+$") or label:find("^%-") or label:find("%-$") then return false end
    last = label
  end
  return last:find("^%a") ~= nil
end

local function is_service(service)
  if #service == 0 or #service > 32 then return false end
  if service:find("^%d+$") then return decimal(service, 65535) ~= nil end
  return service:find("^[%w%-]+$") ~= nil
end

-- IPv4 ----------------------------------------------------------------------

local function judge_ipv4(text)
  local host_text, port_text = text, ""
  local colon = text:find(":", 1, true)
  if colon then
    host_text, port_text = text:sub(1, colon - 1), text:sub(colon + 1)
    if port_text:find(":", 1, true) then return nil end
  end
  local port = 0
  if port_text ~= "" then
    port = decimal(port_text, 65535)
    if not port then return nil end
  end
  local host
  if host_text == "" then
    host = 0
  elseif not host_text:find(".", 1, true) then
    host = decimal(host_text, MAX_HOST)
    if not host then return nil end
  else
    local parts = {}
    for part in (host_text .. "."):gmatch("([^.]*)%.") do parts[#parts + 1] = part end
    if #parts ~= 4 then return nil end
    host = 0
    for _, part in ipairs(parts) do
      local octet = decimal(part, 255)
      if not octet then return nil end
      host = host * 256 + octet
    end
  end
  return { family = "inet", host = host, port = port }
end

-- IPv6 ----------------------------------------------------------------------

--- inet_pton's dotted quad: four decimal octets, no leading zeros.
local function ipv4_tail(text)
  local parts = {}
  for part in (text .. "."):gmatch("([^.]*)%.") do parts[#parts + 1] = part end
  if #parts ~= 4 then return nil end
  local value = 0
  for _, part in ipairs(parts) do
    if not part:find("^%d+$") or #part > 3 or (#part > 1 and part:sub(1, 1) == "0") then return nil end
    local n = tonumber(part)
    if n > 255 then return nil end
    value = value * 256 + n
  end
  return { value >> 16, value & 0xffff }
end

--- The eight 16-bit groups of an IPv6 address's text, or nil.
local function ipv6_groups(text)
  if text == "" then return nil end
  local head, tail = text, nil
  local at = text:find("::", 1, true)
  if at then
    head, tail = text:sub(1, at - 1), text:sub(at + 2)
    if tail:find("::", 1, true) then return nil end
  end
  local function groups_of(part, allow_ipv4)
    local list = {}
    if part == "" then return list end
    local pieces = {}
    for piece in (part .. ":"):gmatch("([^:]*):") do pieces[#pieces + 1] = piece end
    for i, piece in ipairs(pieces) do
      if i == #pieces and allow_ipv4 and piece:find(".", 1, true) then
        local four = ipv4_tail(piece)
        if not four then return nil end
        list[#list + 1], list[#list + 2] = four[1], four[2]
      else
        if not piece:find("^%x+$") or #piece > 4 then return nil end
        list[#list + 1] = tonumber(piece, 16)
      end
    end
    return list
  end
  local front = groups_of(head, tail == nil)
  if not front then return nil end
  if tail == nil then
    return #front == 8 and front or nil
  end
  local back = groups_of(tail, true)
  if not back or #front + #back > 7 then return nil end
  local all = {}
  for _, g in ipairs(front) do all[#all + 1] = g end
  for _ = 1, 8 - #front - #back do all[#all + 1] = 0 end
  for _, g in ipairs(back) do all[#all + 1] = g end
  return all
end

--- The address as inet_ntop writes it (RFC 5952): the longest run of two or
--- more zero groups as "::", lowercase hex without leading zeros, and a
--- dotted tail for IPv4-mapped and IPv4-compatible addresses.
function oracle.canonical6(groups)
  local best_at, best_len, at, len = nil, 0, nil, 0
  for i = 1, 8 do
    if groups[i] == 0 then
      if not at then at, len = i, 0 end
      len = len + 1
      if len > best_len then best_at, best_len = at, len end
    else
      at = nil
    end
  end
  if best_len < 2 then best_at = nil end
  local dotted_tail = best_at == 1 and (best_len == 6 or (best_len == 5 and groups[6] == 0xffff))
  local parts = {}
  local i = 1
  while i <= 8 do
    if i == best_at then
      parts[#parts + 1] = ""                       -- the "::"
      i = i + best_len
    elseif dotted_tail and i == 7 then
      parts[#parts + 1] = string.format("%d.%d.%d.%d", groups[7] >> 8, groups[7] & 255, groups[8] >> 8, groups[8] & 255)
      i = 9
    else
      parts[#parts + 1] = string.format("%x", groups[i])
      i = i + 1
    end
  end
  local text = table.concat(parts, ":")
  if best_at == 1 then text = ":" .. text end
  if best_at and best_at + best_len - 1 == 8 then text = text .. ":" end
  return text
end

local function judge_ipv6(text)
  local inner, rest = text:match("^%[([^%]]*)%](.*)$")
  if not inner then return nil end
  local port = 0
  if rest ~= "" then
    local port_text = rest:match("^:(.*)$")
    if not port_text then return nil end
    if port_text ~= "" then
      port = decimal(port_text, 65535)
      if not port then return nil end
    end
  end
  local address, scope_text = inner, nil
  local percent = inner:find("%", 1, true)
  if percent then address, scope_text = inner:sub(1, percent - 1), inner:sub(percent + 1) end
  local groups = ipv6_groups(address)
  if not groups then return nil end
  local scope
  if scope_text then
    if #scope_text == 0 or #scope_text > 15 then return nil end
    if scope_text:find("^%d+$") then
      scope = decimal(scope_text, MAX_HOST)
      if not scope then return nil end
    elseif interfaces[scope_text] then
      scope = scope_text
    else
      return nil
    end
  end
  return { family = "inet6", groups = groups, scope = scope, port = port }
end

-- Unix ----------------------------------------------------------------------

local function judge_unix(text)
  local name = text:sub(6)
  if name:sub(1, 1) == "@" then
    if #name > 108 then return nil end
    return { family = "unix", abstract = name:sub(2) }
  end
  if name:find("\0", 1, true) or #name > 107 then return nil end
  return { family = "unix", path = name }
end

--- The verdict for `text`: a table with `family` ("inet", "inet6", "unix",
--- or "name" for a host name to resolve) and the parts; nil for mal-formed.
function oracle.judge(text)
  if text:sub(1, 5) == "unix:" then return judge_unix(text) end
  if text:sub(1, 1) == "[" then return judge_ipv6(text) end
  local four = judge_ipv4(text)
  if four then return four end
  local host, service = text:match("^([^:]*):([^:]*)$")
  if host and is_host_name(host) and is_service(service) then return { family = "name", host = host, service = service } end
  return nil
end

--- Whether `getsockname` after binding `verdict` may answer `name`.
function oracle.matches_bound(verdict, name)
  name = tostring(name)
  if verdict.family == "inet" then
    local host, port = name:match("^(%d+%.%d+%.%d+%.%d+):(%d+)$")
    port = tonumber(port)
    local port_ok = (verdict.port ~= 0 and port == verdict.port) or (verdict.port == 0 and port and port > 0)
    return host == oracle.dotted(verdict.host) and port_ok
  elseif verdict.family == "inet6" then
    local text, port = name:match("^%[(.*)%]:(%d+)$")
    port = tonumber(port)
    local port_ok = (verdict.port ~= 0 and port == verdict.port) or (verdict.port == 0 and port and port > 0)
    if not text or not port_ok then return false end
    local address, scope = text:match("^([^%%]*)%%?(.*)$")
    if address ~= oracle.canonical6(verdict.groups) then return false end
    -- the kernel keeps a scope on link-local addresses (fe80::/10) only
    local link_local = verdict.groups[1] & 0xffc0 == 0xfe80
    if verdict.scope == nil or verdict.scope == 0 or not link_local then return scope == "" end
    return scope == tostring(verdict.scope) or interfaces[scope] ~= nil
  elseif verdict.family == "unix" then
    if verdict.path then return name == "unix:" .. verdict.path end
    if verdict.abstract == "" then return name:find("^unix:@%x%x%x%x%x$") ~= nil end   -- autobind
    return name == "unix:@" .. verdict.abstract
  end
  return false
end

-- Generating addresses -------------------------------------------------------

local function number_text()
  local r = random(14)
  if r <= 5 then return tostring(random(0, 255)) end
  if r == 6 then return tostring(random(256, 1000)) end
  if r == 7 then return string.rep("0", random(1, 12)) .. tostring(random(0, 255)) end   -- leading zeros
  if r == 8 then return "" end
  if r == 9 then return pick({ "-1", "+1", " 1", "1 ", "0x1", "1e2", "1.", "٣", "a", "\0", "\255" }) end
  if r == 10 then return tostring(random(0, MAX_HOST)) end
  if r == 11 then return pick({ "4294967295", "4294967296", "99999999999", "2130706433", "00000000000000127" }) end
  return tostring(random(0, 9))
end

local function port_text()
  local r = random(12)
  if r <= 4 then return tostring(random(0, 65535)) end
  if r == 5 then return tostring(random(65536, 999999)) end
  if r == 6 then return string.rep("0", random(1, 8)) .. tostring(random(0, 65535)) end
  if r == 7 then return "" end
  if r == 8 then return pick({ "-1", "+80", " 80", "80 ", "0x50", "8a", "65535", "65536", "00000", "\0", "80:", "http" }) end
  return tostring(random(0, 100))
end

local function ipv4_text()
  local r = random(10)
  if r <= 5 then
    local parts = {}
    local n = chance(0.8) and 4 or random(1, 6)
    for i = 1, n do parts[i] = number_text() end
    return table.concat(parts, ".")
  elseif r <= 7 then return number_text()
  elseif r == 8 then return ""
  end
  return pick({ "127.0.0.1", "0.0.0.0", "127.1.2.3", "255.255.255.255", "2130706433", "127.0.0.256", "localhost" })
end

local function ipv6_text()
  local r = random(8)
  if r <= 3 then
    return pick({ "::1", "::", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1", "fe80::1", "2001:db8::1", "::ffff:7f00:1",
                  "1:2:3:4:5:6:7:8", "1::", "::1.2.3.4", "0000:0000::0001", "FE80::ABCD" })
  end
  local groups = {}
  for i = 1, random(1, 9) do
    groups[i] = chance(0.2) and "" or string.format("%x", random(0, chance(0.8) and 0xffff or 0xfffff))
  end
  local text = table.concat(groups, ":")
  if chance(0.4) then
    local cut = random(1, #text + 1)
    text = text:sub(1, cut - 1) .. "::" .. text:sub(cut)
  end
  if chance(0.15) then text = text .. ":" .. pick({ "127.0.0.1", "1.2.3", "01.2.3.4", "256.1.1.1" }) end
  return text
end

local function ipv6_address()
  local scope = ""
  if chance(0.2) then scope = "%" .. pick({ "lo", "1", "0", "nosuchif9", "", "01", "4294967296", "lo0" }) end
  local text = "[" .. ipv6_text() .. scope
  if chance(0.95) then text = text .. "]" end
  local s = random(4)
  if s == 1 then return text end
  if s == 2 then return text .. ":" end
  return text .. ":" .. port_text()
end

local function unix_address(directory)
  local r = random(6)
  if r == 1 then return "unix:" end
  if r <= 3 then return "unix:@xpio-oracle-" .. random(0, 1e6) .. (chance(0.2) and "\0x" or "") end
  if r == 4 then return "unix:@" .. string.rep("n", random(100, 110)) end
  if r == 5 then return "unix:" .. directory .. "/s" .. random(0, 1e6) end
  return "unix:" .. directory .. "/" .. string.rep("p", random(60, 110))
end

--- A random address string of any form, mostly IPv4 (the first format);
--- Unix paths only under `directory`.
function oracle.random_address(directory)
  local r = random(10)
  if r <= 6 then
    local host = ipv4_text()
    local s = random(6)
    if s == 1 then return host end
    if s == 2 then return host .. ":" end
    return host .. ":" .. port_text()
  elseif r <= 8 then return ipv6_address()
  elseif r == 9 then return unix_address(directory)
  end
  return pick({ "localhost", "example", "a.b" }) .. ":" .. port_text()
end

local MUTATION_ALPHABET = { "0", "1", "9", ".", ":", " ", "\0", "x", "-", "+", "\255", "5", "2", "[", "]", "%", "f", "@" }

function oracle.mutate(text)
  for _ = 1, random(1, 3) do
    local n = #text
    local r = random(5)
    local i = random(1, math.max(n, 1))
    if r == 1 and n > 0 then text = text:sub(1, i - 1) .. text:sub(i + 1)
    elseif r == 2 then text = text:sub(1, i - 1) .. pick(MUTATION_ALPHABET) .. text:sub(i)
    elseif r == 3 and n > 0 then text = text:sub(1, i - 1) .. pick(MUTATION_ALPHABET) .. text:sub(i + 1)
    elseif r == 4 and n > 1 then
      local j = random(1, n)
      text = text .. text:sub(math.min(i, j), math.max(i, j))
    elseif n > 1 and i < n then
      text = text:sub(1, i - 1) .. text:sub(i + 1, i + 1) .. text:sub(i, i) .. text:sub(i + 2)
    end
  end
  return text
end

return oracle

--- report.lua RAW OUT: turn the harness's raw results into one table.
--
-- RAW holds tab-separated lines:
--   meta   <text>                         a header line
--   row    <id> <name> <higher|lower> [<ref id>]
--                                         a workload row, in display order;
--                                         ratios of a row with a ref id use
--                                         the peers and C of that row
--   ratio  <id> <name> <num id> <den id>  a row derived from two others
--   res    <id> <lib> <value>             one run: a number, `cannot: why`
--                                         or `error`
-- The table (Markdown) goes to stdout and to OUT, followed by the goals
-- (goals.lua) and their verdicts.
local stats = require "stats"
local goals = require "goals"

-- Libraries in column order; `floor` is the Lua floor (bench/floor/floor.c),
-- which runs only some workloads, and `luasec` (LuaSec, TLS on LuaSocket)
-- runs only the TLS rows, where luv, cqueues and LuaSocket do not: cells
-- not run show "—".
-- `portable` is XPIO's portable build (docs/PORTING.md), run for the
-- pingpong, accept-storm and spawn rows only.
local LIBS = { "xpio", "portable", "luv", "cqueues", "luasocket", "luasec", "nginx_lua", "floor", "C" }
local COLUMN = { floor = "Lua floor", luasec = "LuaSec", nginx_lua = "nginx+Lua" }
local PEERS = { "luv", "cqueues", "luasocket", "luasec", "nginx_lua" }

local raw_path, out_path = assert(arg[1], "raw file expected"), arg[2]
local meta, rows, runs, notes, row_by_id = {}, {}, {}, {}, {}

for line in io.lines(raw_path) do
  local f = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do f[#f + 1] = field end
  if f[1] == "meta" then
    meta[#meta + 1] = f[2]
  elseif f[1] == "row" then
    rows[#rows + 1] = { id = f[2], name = f[3], higher = f[4] == "higher", ref = f[5] ~= "" and f[5] or nil }
    row_by_id[f[2]] = rows[#rows]
  elseif f[1] == "ratio" then
    rows[#rows + 1] = { id = f[2], name = f[3], higher = true, num = f[4], den = f[5] }
    row_by_id[f[2]] = rows[#rows]
  elseif f[1] == "res" then
    local key = f[2] .. "\t" .. f[3]
    runs[key] = runs[key] or {}
    table.insert(runs[key], f[4])
  end
end

-- The median of a cell's runs, or a word: cannot, error, or nil (not run).
local function cell(id, lib)
  local values = runs[id .. "\t" .. lib]
  if not values then return nil end
  local numbers = {}
  for _, v in ipairs(values) do
    if v == "error" then return "error" end
    local why = v:match("^cannot:%s*(.*)")
    if why then
      notes[lib .. ": " .. why] = true
      return "cannot"
    end
    numbers[#numbers + 1] = assert(tonumber(v), "bad value " .. v)
  end
  return stats.median(numbers)
end

local function value(row, lib)
  if row.num then
    local a, b = value({ id = row.num }, lib), value({ id = row.den }, lib)
    if type(a) == "number" and type(b) == "number" and b > 0 then return a / b end
    if a == "error" or b == "error" then return "error" end
    if a == "cannot" or b == "cannot" then return "cannot" end
    return nil
  end
  return cell(row.id, lib)
end

local function fmt(v)
  if v == nil then return "—" end
  if type(v) == "string" then return v end
  if v >= 100 or v <= -100 then return string.format("%.0f", v) end
  return string.format("%.3g", v)
end

local function ratio(a, b)
  if type(a) ~= "number" or type(b) ~= "number" or b == 0 then return "—" end
  return string.format("%.2f", a / b)
end

local lines = {}
local function out(s) lines[#lines + 1] = s end

local headers = {}
for i, lib in ipairs(LIBS) do headers[i] = COLUMN[lib] or lib end

for _, m in ipairs(meta) do out(m) end
out("")
out("| workload | " .. table.concat(headers, " | ") .. " | XPIO/luv | XPIO/best peer | XPIO/Lua floor | XPIO/C floor |")
out("|---|" .. string.rep("---:|", #LIBS + 4))
for _, row in ipairs(rows) do
  local values, cells = {}, {}
  for _, lib in ipairs(LIBS) do values[lib] = value(row, lib) end
  local base = values
  if row.ref then
    base = {}
    for _, lib in ipairs(LIBS) do base[lib] = value({ id = row.ref }, lib) end
  end
  for _, lib in ipairs(LIBS) do
    if row.ref and lib ~= "xpio" then cells[#cells + 1] = "(above)" else cells[#cells + 1] = fmt(values[lib]) end
  end
  local best, best_lib = nil, nil
  for _, lib in ipairs(PEERS) do
    local v = base[lib]
    if type(v) == "number" and (not best or (row.higher and v > best) or (not row.higher and v < best)) then
      best, best_lib = v, lib
    end
  end
  local best_ratio = ratio(values.xpio, best)
  if best_lib and best_ratio ~= "—" then best_ratio = best_ratio .. " (" .. best_lib .. ")" end
  out(string.format("| %s | %s | %s | %s | %s | %s |", row.name, table.concat(cells, " | "),
    ratio(values.xpio, base.luv), best_ratio, ratio(values.xpio, base.floor), ratio(values.xpio, base.C)))
end
out("")
out("Medians of the runs. Ratios are XPIO's value over the other's: above 1 is better for XPIO")
out("in rates (/s) and in the idle-scale ratio, worse in ms and bytes, where the best peer is")
out("the lowest. (above): one idiomatic pingpong per peer; the sched row's ratios use it.")
out("Lua floor: XPIO's try_/when_ loop on the thinnest C binding of the same API")
out("(bench/floor/), run for the pingpong rows only; LuaSec (TLS on LuaSocket) for the TLS")
out("rows only, where luv, cqueues and LuaSocket are not run; portable: XPIO's portable build")
out("(build/portable/xpio.so: poll, the SIGCHLD pipe, fcntl after creation), for the")
out("pingpong, accept-storm and spawn rows only; —: not run. nginx+Lua: nginx")
out("with content_by_lua_block (the OpenResty engine); in the HTTP and static-file rows the")
out("C column is nginx itself (`return 200`, `sendfile on`), the ceiling.")
local sorted = {}
for note in pairs(notes) do sorted[#sorted + 1] = note end
table.sort(sorted)
for _, note in ipairs(sorted) do out("cannot, " .. note) end

-- A row's median for `lib` as a number, or nil; other libraries than XPIO
-- take it from the row a row refers to (the sched row: the pingpong row).
local function measured(id, lib)
  local row = row_by_id[id]
  if not row then return nil end
  if row.ref and lib ~= "xpio" then row = row_by_id[row.ref] end
  local v = row and value(row, lib)
  return type(v) == "number" and v or nil
end

-- A row's name without its unit: "accept-storm (conn/s)" -> "accept-storm".
local function name(id)
  local row = row_by_id[id]
  return row and (row.name:gsub("%s*%b()$", ""))
end

out("")
out("### Goals (issues 13, 20, 24 and 25): XPIO over the other, or XPIO's value alone")
out("")
for _, line in ipairs(goals.lines(measured, name)) do out(line) end

local text = table.concat(lines, "\n") .. "\n"
io.write(text)
if out_path then
  local f = assert(io.open(out_path, "w"))
  f:write(text)
  f:close()
end

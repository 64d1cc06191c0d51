-- micro.lua N [ROUNDS [C_PROGRAM]]: nanoseconds per call of the calls a
-- try_/when_ loop makes (try_read, try_write, when_read, wait), for XPIO and
-- for the Lua floor (bench/floor/floor.c), with their ratio: what XPIO's
-- binding costs per call over the thinnest binding of the same API. With
-- C_PROGRAM (bench/c/micro.c, built), also the system call alone.
--
-- Each call is timed N times (wait with 64 ready tasks N/64 times) in each
-- of ROUNDS rounds; the table gives the medians of the rounds, as Markdown
-- on stdout. The loops are in bench/micro/xpio.lua and bench/micro/floor.lua.
local bench = require "bench"
local stats = require "stats"
local floor = require "floor"

local n, rounds, c_program = bench.int(1, 100000), bench.int(2, 5), arg[3]
local here = arg[0]:match("^(.*)/[^/]*$") or "."
-- "fields": the floor keeping the tasks' _dequeue/_dequeuedata contract
-- (bench/floor/floor.c's header says why it is a second floor).
local LIBS = { "xpio", "floor", "fields" }
local floor_loops = dofile(here .. "/micro/floor.lua")
local loops = {
  xpio = dofile(here .. "/micro/xpio.lua"),
  floor = { cases = function(c) return floor_loops.cases(c, false) end },
  fields = { cases = function(c) return floor_loops.cases(c, true) end },
}

-- What is measured, in table order; `per`: calls in a timed unit of n.
local CASES = {
  { id = "read_eagain", name = "try_read, EAGAIN" },
  { id = "read_byte", name = "try_read, 1 byte there" },
  { id = "write_byte", name = "try_write, 1 byte" },
  { id = "when_read", name = "when_read (schedule only)" },
  { id = "wait1", name = "wait(0), 1 ready task" },
  { id = "wait64", name = "wait(0), 64 ready tasks", per = 64 },
  { id = "cycle", name = "when_read + wait(0), 1 task" },
}

-- One clock for both libraries, the cheapest (a bare clock_gettime), so
-- that a timed segment's two clock reads cost the same on both sides; that
-- cost is measured here and taken off every segment. MICRO_CLOCK=cpu times
-- the thread's CPU instead, for a machine busy with other work (each read
-- is then a system call, taken off the same way).
local clock = os.getenv("MICRO_CLOCK") == "cpu" and floor.cputime or floor.gettime

local function clock_cost()
  local total, count = 0, math.max(1000, n)
  for _ = 1, count do
    local t0 = clock()
    total = total + (clock() - t0)
  end
  return total / count
end

local cases = {}
for _, lib in ipairs(LIBS) do cases[lib] = loops[lib].cases(clock) end

-- ns per call of one case on one library, one round.
local function measure(lib, case, overhead)
  local calls = math.max(1, n // (case.per or 1))
  bench.gc()
  local seconds, segments = cases[lib][case.id](calls)
  return math.max(0, seconds - segments * overhead) / calls * 1e9
end

-- The C program's "id ns" lines, one run.
local function system_calls()
  local quoted = "'" .. c_program:gsub("'", "'\\''") .. "'"
  local out = assert(io.popen(quoted .. " " .. n))
  local found = {}
  for line in out:lines() do
    local id, ns = line:match("^(%S+) (%S+)$")
    found[id] = assert(tonumber(ns), "bad line from " .. c_program .. ": " .. line)
  end
  assert(out:close(), c_program .. " failed")
  return found
end

local samples = {}
local function add(key, value)
  samples[key] = samples[key] or {}
  table.insert(samples[key], value)
end

local overheads = {}
for round = 1, rounds do
  local overhead = clock_cost()
  overheads[#overheads + 1] = overhead * 1e9
  for _, case in ipairs(CASES) do
    -- Rotate which library goes first, so none always runs warm.
    for i = 0, #LIBS - 1 do
      local lib = LIBS[(round + i) % #LIBS + 1]
      add(lib .. case.id, measure(lib, case, overhead))
    end
  end
  if c_program then
    for id, ns in pairs(system_calls()) do add("C" .. id, ns) end
  end
end

local function median(key) return samples[key] and stats.median(samples[key]) end
local function fmt(v) return v and string.format("%.0f", v) or "—" end

local lines = {
  string.format("## Micro-benchmark: ns per call (%d calls, %d round(s), medians)", n, rounds),
  "",
  "| call | XPIO | Lua floor | XPIO/Lua floor | floor with task fields | XPIO/that floor | XPIO − floor "
    .. "| system call alone (C) |",
  "|---|---:|---:|---:|---:|---:|---:|---:|",
}
local function ratio(x, f) return f and f > 0 and string.format("%.2f", x / f) or "—" end
for _, case in ipairs(CASES) do
  local x, f, ff = median("xpio" .. case.id), median("floor" .. case.id), median("fields" .. case.id)
  lines[#lines + 1] = string.format("| %s | %s | %s | %s | %s | %s | %s | %s |", case.name, fmt(x), fmt(f),
    ratio(x, f), fmt(ff), ratio(x, ff), fmt(x - f), fmt(median("C" .. case.id)))
end
lines[#lines + 1] = ""
lines[#lines + 1] = string.format("Clock read (taken off each timed segment): %.0f ns. Socket pairs (AF_UNIX); "
  .. "when_read is timed over 64 readable pairs, the wait that returns them is not; "
  .. "wait is timed with its tasks scheduled beforehand; the last row is both, untimed apart.",
  stats.median(overheads))
io.write(table.concat(lines, "\n"), "\n")

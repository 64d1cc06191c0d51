--- The issues' performance goals for XPIO (issue 13; the TLS rows: issue
--- 20; the portable build against the Linux one: issue 25), each checked against
--- a run's medians: report.lua prints them after the table, so every run
--- says which goals it meets.
local goals = {}

local LIB_NAMES = { floor = "Lua floor", C = "C floor", luasec = "LuaSec", xpio = "XPIO on Linux",
  nginx_lua = "nginx+Lua" }

--- Each goal: XPIO's value in `row` (or `of`'s, the portable build's) over
--- `vs`'s value (the same row, or the row it refers to), or XPIO's value
--- alone when there is no `vs`, must be at least (`at_least`) or at most
--- (`at_most`) the target. A `note(measured)` adds what the run says of
--- the goal's reach to its verdict.
goals.LIST = {
  { row = "pingpong", vs = "floor", at_least = 0.92 },
  { row = "pingpong_sched", vs = "floor", at_least = 0.85 },
  { row = "idle_scale", at_least = 0.95 },
  { row = "bulk", vs = "luv", at_least = 1.1 },
  { row = "bulk", vs = "C", at_least = 0.9 },
  { row = "accept", vs = "luv", at_least = 1.2 },
  { row = "accept", vs = "C", at_least = 0.9 },
  { row = "spawn", vs = "C", at_least = 0.95 },
  { row = "spawn_pipes", vs = "C", at_least = 0.95 },
  { row = "load", vs = "luv", at_most = 0.5 },
  { row = "memory", vs = "luv", at_most = 1 },
  { row = "tls_bulk", vs = "luasec", at_least = 1 },
  { row = "tls_bulk", vs = "C", at_least = 0.85 },
  { row = "tls_handshake", vs = "luasec", at_least = 1 },
  { row = "tls_handshake", vs = "C", at_least = 0.9 },
  { row = "pingpong", of = "portable", vs = "xpio", at_least = 0.9 },
  { row = "accept", of = "portable", vs = "xpio", at_least = 0.9 },
  { row = "spawn", of = "portable", vs = "xpio", at_least = 0.8 },
  { row = "spawn_pipes", of = "portable", vs = "xpio", at_least = 0.8 },
  { row = "http_c50", vs = "luv", at_least = 1.1 },
  { row = "static_1", vs = "C", at_least = 0.9 },
  { row = "static_64", vs = "C", at_least = 0.9 },
  { row = "proxy_gain", at_least = 2, note = function(measured)
    -- How far apart forwarders can be here: the ends alone against the
    -- Lua forwarder (lib/proxy_run.sh with `pump direct`).
    local ends, lua = measured("proxy_direct", "C"), measured("proxy_rw", "xpio")
    if ends and lua and lua > 0 then
      return string.format("no forwarder at all ran %.2f × the Lua forwarder", ends / lua)
    end
  end },
  { row = "proxy_cpu_gain", at_least = 2 },
  { row = "echo_rss", vs = "luv", at_most = 1 },
}

-- "≥ 0.92 × Lua floor", "≥ 0.95", "≤ luv".
local function target_text(goal)
  local sign = goal.at_least and "≥" or "≤"
  local target = goal.at_least or goal.at_most
  if not goal.vs then return string.format("%s %g", sign, target) end
  local other = LIB_NAMES[goal.vs] or goal.vs
  if target == 1 then return string.format("%s %s", sign, other) end
  return string.format("%s %g × %s", sign, target, other)
end

--- Markdown lines, one table row per goal. `measured(row, lib)` gives a
--- row's median for a library as a number (following the row's reference
--- for other libraries than XPIO), or nil; `name(row)` gives the row's name.
function goals.lines(measured, name)
  local lines = { "| goal | measured | |", "|---|---:|---|" }
  for _, goal in ipairs(goals.LIST) do
    local mine = measured(goal.row, goal.of or "xpio")
    local theirs = 1
    if goal.vs then theirs = measured(goal.row, goal.vs) end   -- nil: the other was not measured
    local ratio, verdict = nil, "not measured"
    if mine and theirs and theirs ~= 0 then
      ratio = mine / theirs
      local met = goal.at_least and ratio >= goal.at_least or goal.at_most and ratio <= goal.at_most
      verdict = met and "met" or "short"
    end
    local subject = (goal.of and goal.of .. " " or "") .. (name(goal.row) or goal.row)
    local note = goal.note and goal.note(measured)
    if note then verdict = verdict .. " (" .. note .. ")" end
    lines[#lines + 1] = string.format("| %s %s | %s | %s |", subject, target_text(goal),
      ratio and string.format("%.3f", ratio) or "—", verdict)
  end
  return lines
end

return goals

--- Small statistics helpers.
local stats = {}

--- The median of an array of numbers (nil for an empty array).
function stats.median(values)
  local n = #values
  if n == 0 then return nil end
  local sorted = table.move(values, 1, n, 1, {})
  table.sort(sorted)
  if n % 2 == 1 then return sorted[(n + 1) // 2] end
  return (sorted[n // 2] + sorted[n // 2 + 1]) / 2
end

return stats

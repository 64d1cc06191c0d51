--- Shared helpers for the benchmark workloads: arguments, checks, results.
--
-- Every workload prints exactly one line on stdout: a number, or
-- `cannot: <reason>` when the library cannot do the work. Anything else
-- (an error, a failed check) is reported by the harness as `error`.
local bench = {}

--- The positional argument `i` as an integer (or `default`).
function bench.int(i, default)
  local v = arg[i]
  if v == nil then return default end
  return assert(math.tointeger(tonumber(v)), "argument " .. i .. " must be an integer")
end

--- Print the result of a workload and leave.
function bench.result(value)
  assert(type(value) == "number" and value == value and value >= 0, "bad result")
  io.write(string.format("%.6g\n", value))
  os.exit(0)
end

--- Say the library cannot do this workload, and leave.
function bench.cannot(reason)
  io.write("cannot: ", reason, "\n")
  os.exit(0)
end

--- Raise an error unless `cond` holds: the verification of a workload.
function bench.check(cond, fmt, ...)
  if not cond then error("check failed: " .. string.format(fmt, ...), 2) end
  return cond
end

--- Resident set size of this process in bytes (from /proc/self/status).
function bench.rss()
  local f = assert(io.open("/proc/self/status"))
  local status = f:read("a")
  f:close()
  local kib = assert(status:match("VmRSS:%s*(%d+)%s*kB"), "no VmRSS")
  return tonumber(kib) * 1024
end

--- Full garbage collection, twice (finalisers may free more).
function bench.gc()
  collectgarbage("collect")
  collectgarbage("collect")
end

--- A 64 KiB chunk for the bulk transfer.
bench.CHUNK = 64 * 1024

--- The TLS rows' certificate directory (ca.pem, cert.pem, key.pem, made by
--- lib/tls_certs.sh): the positional argument `i`, or build/bench/tls under
--- the checkout this script is in. Fails when its files are missing.
function bench.tlsdir(i)
  local dir = arg[i]
  if not dir then
    local root = arg[0]:match("^(.*)/bench/[^/]+/[^/]+$") or "."
    dir = root .. "/build/bench/tls"
  end
  for _, file in ipairs({ "ca.pem", "cert.pem", "key.pem" }) do
    local f = io.open(dir .. "/" .. file)
    assert(f, "missing " .. dir .. "/" .. file .. " (bench/lib/tls_certs.sh makes it)")
    f:close()
  end
  return dir
end

--- A deadline guard: every wait in a workload is bounded.
bench.TIMEOUT = 10

return bench

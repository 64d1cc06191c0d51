--- fork + exec + wait through lua-posix, for the peers that have no process
--- API of their own (cqueues, LuaSocket). `available` is false, with a
--- `reason`, when lua-posix cannot be loaded by this Lua.
local ok, unistd = pcall(require, "posix.unistd")
local ok2, wait = pcall(require, "posix.sys.wait")
if not (ok and ok2) then
  return {
    available = false,
    reason = "no process API, and lua-posix has no module for " .. _VERSION .. " here",
  }
end

local M = { available = true }

--- Run /bin/true once and wait for it; with `pipes` its stdin and stdout
--- are pipes and stdout is read to its end. Returns true when it exited 0.
function M.run_true(pipes)
  local in_r, in_w, out_r, out_w
  if pipes then
    in_r, in_w = assert(unistd.pipe())
    out_r, out_w = assert(unistd.pipe())
  end
  local pid = assert(unistd.fork())
  if pid == 0 then
    if pipes then
      unistd.dup2(in_r, 0)
      unistd.dup2(out_w, 1)
      for _, fd in ipairs({ in_r, in_w, out_r, out_w }) do unistd.close(fd) end
    end
    unistd.exec("/bin/true", { [0] = "/bin/true" })
    unistd._exit(127)
  end
  if pipes then
    unistd.close(in_r)
    unistd.close(out_w)
    unistd.close(in_w)
    local data = assert(unistd.read(out_r, 64))
    assert(data == "", "unexpected output from /bin/true")
    unistd.close(out_r)
  end
  local _, how, code = assert(wait.wait(pid))
  return how == "exited" and code == 0
end

return M

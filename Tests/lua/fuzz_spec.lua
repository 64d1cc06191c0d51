-- Runs the spec-driven fuzz driver (Tests/lua/fuzz.lua) for a short time:
-- XPIO_FUZZ_SECONDS (default 10 here, once per backend; `make fuzz` runs it for longer). The
-- driver picks a time-based seed and prints it; XPIO_FUZZ_SEED repeats a run.
local helper = require "helper"
local shell_quote, root = helper.shell_quote, helper.ROOT

describe("fuzz", function()
  it("the spec-driven fuzz driver and the address oracle run without a failure", function()
    local seconds = os.getenv("XPIO_FUZZ_SECONDS") or "10"
    local settings = { "XPIO_FUZZ_SECONDS=" .. shell_quote(seconds) }
    for _, name in ipairs({ "LUA_CPATH", "LUA_PATH", "XPIO_FUZZ_SEED", "XPIO_FUZZ_CASES" }) do
      local value = os.getenv(name)
      if value then settings[#settings + 1] = name .. "=" .. shell_quote(value) end
    end
    local output, ok, how, code = helper.run_command(string.format("cd %s && env %s %s Tests/lua/fuzz.lua",
      shell_quote(root), table.concat(settings, " "), shell_quote(helper.LUA)))
    print("\n" .. output:gsub("%s+$", ""))
    assert.is_true(ok, string.format("the fuzz driver failed (%s %s):\n%s", tostring(how), tostring(code), output))
    assert.matches("fuzz: %d+ calls, 0 failures", output)
  end)
end)

-- luacheck configuration for every Lua file of the project.
std = "lua54"
max_line_length = 140
files["Tests/lua"] = { std = "+busted" }
files["build/gen"] = { std = "+busted" }
exclude_files = { "types/xpio.lua", "build/gen/*" }

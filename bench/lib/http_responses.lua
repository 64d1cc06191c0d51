--- The HTTP rows' answers (bench/http/*.lua), one set for every server:
--- the 12-byte one, and the head of `GET /file` for the file at `path`
--- (nil: none) with its size.
local M = {}

M.BODY = "hello world\n"
M.SMALL = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " .. #M.BODY .. "\r\n\r\n" .. M.BODY

--- The file's size and the head of its answer.
function M.file(path)
  if not path then return 0, nil end
  local f = assert(io.open(path, "rb"))
  local size = f:seek("end")
  f:close()
  return size, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " .. size .. "\r\n\r\n"
end

return M

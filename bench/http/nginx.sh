#!/usr/bin/env bash
# http/nginx.sh DIR KIND [FILE]: writes an nginx configuration to DIR for
# one worker, no master (so the PID is the one serving), on a free loopback
# port, and execs nginx in the foreground after printing the port. KIND:
# "lua" answers with content_by_lua_block (Debian's libnginx-mod-http-lua,
# the OpenResty engine), "plain" with `return 200` (the C ceiling). GET
# /file serves FILE with `sendfile on`.
set -eu
dir=$1 kind=$2 file=${3:-}
mkdir -p "$dir/logs"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$kind" = lua ]; then
  modules='load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;'
  content='default_type text/plain; content_by_lua_block { ngx.print("hello world\n") }'
else
  modules=''
  content='default_type text/plain; return 200 "hello world\n";'
fi
file_location=''
[ -n "$file" ] && file_location="location = /file { alias $file; default_type application/octet-stream; }"
cat > "$dir/nginx.conf" <<CONF
$modules
daemon off;
master_process off;
worker_processes 1;
error_log $dir/logs/error.log error;
pid $dir/nginx.pid;
events { worker_connections 4096; use epoll; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  client_body_temp_path $dir/tmp; proxy_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
  server {
    listen 127.0.0.1:$port;
    location / { $content }
    $file_location
  }
}
CONF
echo "$port"
exec nginx -p "$dir" -c "$dir/nginx.conf"

#!/bin/sh
# Checks the TLS engine (tls.so's provider) for real, without the Lua side:
# builds Tests/tls/engine_check.c, makes a throwaway CA and certificates
# (EC P-256, like Tests/tls/make_certs.sh), and runs the engine against
# `openssl s_server` / `s_client` on loopback and against itself over
# socketpairs. Needs the debug build (`swift build --product xpio_tls`),
# where xpio_tls_engine is visible. Every wait is bounded; every server is
# stopped by its PID.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lib=${LIB:-$root/.build/debug/libxpio_tls.so}
[ -f "$lib" ] || { echo "no $lib: swift build --product xpio_tls first"; exit 2; }
# The debug build is ordinary Swift: it needs the toolchain's runtime libraries.
swift_lib=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")/lib/swift/linux
export LD_LIBRARY_PATH="$swift_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

work=$(mktemp -d /tmp/xpio-tls-check.XXXXXX)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
cd "$work" || exit 2

cc -Wall -Wextra -O1 -o engine_check "$here/engine_check.c" -I"$root/Sources/CTLSABI/include" -ldl -rdynamic || exit 2
check="${RUNNER:-} ./engine_check $lib"   # RUNNER="valgrind ..." runs each case under it

# --- certificates -----------------------------------------------------------
q() { "$@" >/dev/null 2>&1 || { echo "failed: $*"; exit 2; }; }
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
q openssl req -x509 $ec -keyout ca.key -out ca.pem -days 3650 -subj "/CN=XPIO Test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
q openssl req $ec -keyout leaf.key -out leaf.csr -subj "/CN=localhost"
printf "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n" > leaf.ext
q openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -extfile leaf.ext -out leaf.pem
printf "subjectAltName=DNS:wrong.example\nextendedKeyUsage=serverAuth\n" > wrong.ext
q openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -extfile wrong.ext -out wrong.pem
q openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days -1 -extfile leaf.ext -out expired.pem
q openssl req -x509 $ec -keyout self.key -out self.pem -days 30 -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost"
q openssl req -x509 $ec -keyout ca2.key -out ca2.pem -days 30 -subj "/CN=Other CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
q openssl x509 -req -in leaf.csr -CA ca2.pem -CAkey ca2.key -CAcreateserial -days 30 -extfile leaf.ext -out untrusted.pem
q openssl req $ec -keyout other.key -out other.csr -subj "/CN=other.example"
printf "subjectAltName=DNS:other.example\nextendedKeyUsage=serverAuth\n" > other.ext
q openssl x509 -req -in other.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile other.ext -out other.pem
q openssl req $ec -keyout client.key -out client.csr -subj "/CN=xpio-client"
printf "extendedKeyUsage=clientAuth\n" > client.ext
q openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile client.ext -out client.pem

openssl ec -in leaf.key -aes256 -passout pass:secret -out leaf-encrypted.key 2>/dev/null || { echo "failed: encrypted key"; exit 2; }
export CHECK_ENCRYPTED_KEY=$work/leaf-encrypted.key CHECK_CLIENT_CERT=$work/client.pem CHECK_CLIENT_KEY=$work/client.key

fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {   # up to 5 s for a listener on $1
    i=0
    while [ $i -lt 50 ]; do
        ss -ltn "sport = :$1" | grep -q LISTEN && return 0
        sleep 0.1; i=$((i + 1))
    done
    return 1
}
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# s_server on a fresh port with the given options; sets $port and $spid.
serve() {
    port=$(free_port)
    openssl s_server -quiet -accept "127.0.0.1:$port" "$@" <stdin.fifo >server.log 2>&1 &
    spid=$!
    pids="$pids $spid"
    wait_port "$port" || { echo "s_server did not start: $*"; cat server.log; }
}

# client NAME EXPECT HOST CA  -- against the running s_server
client() {
    name=$1; expect=$2; host=$3; ca=$4
    if out=$(timeout 20 $check client "$port" "$host" "$ca" "$expect" 2>&1); then
        pass "$name"; echo "$out" | sed 's/^/    /' | head -6
    else
        fail "$name"; echo "$out" | sed 's/^/    /'
    fi
}

# s_server's stdin never ends (at EOF it would close the connection itself):
# a fifo this script holds open for writing.
mkfifo stdin.fifo
exec 3<>stdin.fifo

# one s_server per case
case_server() {   # NAME EXPECT HOST CA -- s_server options...
    name=$1; expect=$2; host=$3; ca=$4; shift 4
    serve "$@"
    client "$name" "$expect" "$host" "$ca"
    stop "$spid"
}

www="-www"
case_server "good handshake + HTTP over s_server -www" "ok:HTTP/1.0 200 ok" localhost ca.pem $www -cert leaf.pem -key leaf.key
case_server "IP literal checked against the SAN" "ok:HTTP/1.0 200 ok" 127.0.0.1 ca.pem $www -cert leaf.pem -key leaf.key
case_server "bracketed IPv6 literal" "ok:HTTP/1.0 200 ok" "[::1]" ca.pem $www -cert leaf.pem -key leaf.key
# (the server listens on 127.0.0.1: the name checked is ::1, in leaf's SAN)
case_server "wrong host" "error:xpio: tls: certificate verify failed: hostname mismatch" localhost ca.pem $www -cert wrong.pem -key leaf.key
case_server "IP not in the SAN" "error:xpio: tls: certificate verify failed: IP address mismatch" 127.0.0.1 ca.pem $www -cert wrong.pem -key leaf.key
case_server "expired" "error:xpio: tls: certificate verify failed: certificate has expired" localhost ca.pem $www -cert expired.pem -key leaf.key
case_server "self-signed" "error:xpio: tls: certificate verify failed: self-signed certificate" localhost ca.pem $www -cert self.pem -key self.key
case_server "untrusted CA" "error:xpio: tls: certificate verify failed: unable to get local issuer certificate" localhost ca.pem $www -cert untrusted.pem -key leaf.key
case_server "verify=0 accepts self-signed" "ok:HTTP/1.0 200 ok" localhost none $www -cert self.pem -key self.key
case_server "verify=0 without a host" "ok:HTTP/1.0 200 ok" - none $www -cert self.pem -key self.key
case_server "TLS 1.0-only server" "error:tlsv1 alert protocol version" localhost ca.pem $www -cert leaf.pem -key leaf.key -tls1 -cipher DEFAULT@SECLEVEL=0
export CHECK_MAX=1.2
case_server "max_version 1.2" "ok:TLSv1.2" localhost ca.pem $www -cert leaf.pem -key leaf.key
unset CHECK_MAX
case_server "system store (SSL_CERT_FILE) does not trust the test CA" "error:xpio: tls: certificate verify failed: unable to get local issuer certificate" localhost "" $www -cert leaf.pem -key leaf.key
export SSL_CERT_FILE=$work/ca.pem
case_server "system store from SSL_CERT_FILE" "ok:HTTP/1.0 200 ok" localhost "" $www -cert leaf.pem -key leaf.key
unset SSL_CERT_FILE
export CHECK_CERT=client.pem CHECK_KEY=client.key
case_server "client certificate to a server that requires one" "ok:HTTP/1.0 200 ok" localhost ca.pem $www -cert leaf.pem -key leaf.key -Verify 1 -CAfile ca.pem
unset CHECK_CERT CHECK_KEY
case_server "no client certificate, server requires one" "error:tlsv13 alert certificate required" localhost ca.pem $www -cert leaf.pem -key leaf.key -Verify 1 -CAfile ca.pem

# peer killed after the handshake (no close_notify)
serve -cert leaf.pem -key leaf.key
timeout 20 $check hold "$port" localhost ca.pem > hold.log 2>&1 &
hpid=$!
i=0; while [ $i -lt 50 ] && ! grep -q READY hold.log; do sleep 0.1; i=$((i + 1)); done
kill -9 "$spid"; wait "$spid" 2>/dev/null
if wait "$hpid"; then pass "peer killed: unexpected eof"; else fail "peer killed: unexpected eof"; fi
sed 's/^/    /' hold.log

# a plain-text server: the client meets no TLS at all
port=$(free_port)
python3 -c '
import socket, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(1); l.settimeout(10)
c, _ = l.accept(); c.settimeout(5)
try: c.recv(4096)
except Exception: pass
c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n"); c.close()
' "$port" &
ppid_=$!
pids="$pids $ppid_"
wait_port "$port"
client "plain-text server" "error:wrong version number" localhost ca.pem
wait "$ppid_" 2>/dev/null

# a plain-text client at the engine server
port=$(free_port)
timeout 20 $check server "$port" leaf.pem leaf.key > eserver.log 2>&1 &
epid=$!
wait_port "$port"
python3 -c '
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
c.sendall(b"GET / HTTP/1.0\r\n\r\n")
try: c.recv(100)
except Exception: pass
' "$port"
wait "$epid"
if grep -q "server handshake: http request" eserver.log; then pass "plain HTTP at the engine server"; else fail "plain HTTP at the engine server"; fi
sed 's/^/    /' eserver.log

# the engine as a server, answering openssl s_client (SNI map + ALPN)
sni_case() {   # NAME SERVERNAME EXPECTED-SUBJECT
    port=$(free_port)
    timeout 20 $check server "$port" leaf.pem leaf.key other.example other.pem other.key > eserver.log 2>&1 &
    epid=$!
    wait_port "$port"
    reply=$(printf 'hello engine\n' | timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername "$2" \
        -alpn http/1.1 -CAfile ca.pem -verify_return_error -verify_hostname "$2" -ign_eof 2>s_client.err)
    wait "$epid"; estatus=$?
    if [ $estatus -eq 0 ] && echo "$reply" | grep -q "HELLO ENGINE" && echo "$reply" | grep -q "subject=CN = $3" \
        && echo "$reply" | grep -q "ALPN protocol: http/1.1"; then
        pass "$1"
    else
        fail "$1"; echo "$reply" | tail -20; cat s_client.err
    fi
    sed 's/^/    /' eserver.log
}
sni_case "engine server answers s_client (default certificate)" localhost localhost
sni_case "engine server switches certificate by SNI" other.example other.example

# contexts' error messages; in-process pairs (ALPN, stash, CLOSED, eof, session, kept bytes)
timeout 20 $check contexts leaf.pem leaf.key ca.pem other.key </dev/null || fails=$((fails + 1))
timeout 60 $check pairs leaf.pem leaf.key ca.pem || fails=$((fails + 1))

echo "engine_check: $fails failure(s)"
[ $fails -eq 0 ]

#!/usr/bin/env bash
# bench/lib/tls_certs.sh DIR: the TLS rows' certificates, made once: a CA
# (ca.pem) and a leaf for localhost and 127.0.0.1 signed by it (cert.pem,
# key.pem), EC P-256 as in /work/shared/tls-notes.md §5. Kept while the leaf
# is valid for another day; otherwise made afresh. Prints nothing on success.
set -eu -o pipefail
DIR=${1:?usage: tls_certs.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
cd "$DIR"
if [ -f ca.pem ] && [ -f cert.pem ] && [ -f key.pem ] &&
   openssl x509 -in cert.pem -noout -checkend 86400 >/dev/null 2>&1 &&
   openssl verify -CAfile ca.pem cert.pem >/dev/null 2>&1; then
  exit 0
fi
tmp=$(mktemp -d "$DIR/.new.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
{
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
    -days 3650 -subj "/CN=XPIO Bench CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out leaf.csr -subj "/CN=localhost"
  printf "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n" > leaf.ext
  openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -extfile leaf.ext -out cert.pem
  openssl verify -CAfile ca.pem -verify_hostname localhost cert.pem
} > log 2>&1 || { cat log >&2; exit 1; }
chmod 600 ca.key key.pem
mv ca.key ca.pem key.pem cert.pem "$DIR/"

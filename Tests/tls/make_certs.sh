#!/bin/sh
# Throwaway certificates for the TLS tests (Tests/lua/tls_spec.lua), made
# with the openssl CLI into DIR (created if missing). EC P-256 keeps it fast
# (well under a second). Nothing here is secret: every key is made anew on
# each run and removed with DIR by the test.
#
#   Tests/tls/make_certs.sh DIR
#
# DIR then holds (each NAME.pem with its key NAME.key, unless said):
#   ca        "CN=XPIO Test CA", the CA the tests trust
#   leaf      CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1, serverAuth, by ca
#   expired   leaf's name and key (leaf.key), by ca, its notAfter a day before its notBefore
#   wrong     CN=wrong.example, SAN DNS:wrong.example only (no IP), by ca
#   self      CN=localhost, SAN DNS:localhost, IP:127.0.0.1, self-signed
#   ca2       "CN=XPIO Other CA", a second CA nobody trusts
#   untrusted leaf's name and key (leaf.key), by ca2
#   client    CN=xpio-client, clientAuth, by ca
#   chain.pem leaf.pem then ca.pem (a server chain, leaf first)
#   leaf-enc.key  leaf.key encrypted (AES-256) with the password "xpio-secret"
set -eu
dir=${1:?usage: make_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
leaf_san="subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"

# ca NAME CN: a self-signed CA
ca() {
  openssl req -x509 $ec -keyout "$1.key" -out "$1.pem" -days 3650 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# sign CSR CA OUT DAYS EXTENSIONS...: OUT.pem from CSR, signed by CA, with
# the extensions (one per argument) in an extension file
sign() {
  csr=$1 issuer=$2 out=$3 days=$4
  shift 4
  printf '%s\n' "$@" > "$out.ext"
  openssl x509 -req -in "$csr" -CA "$issuer.pem" -CAkey "$issuer.key" -CAcreateserial \
    -days "$days" -extfile "$out.ext" -out "$out.pem" 2>/dev/null
  rm -f "$out.ext"
}

ca ca "XPIO Test CA"
ca ca2 "XPIO Other CA"

openssl req $ec -keyout leaf.key -out leaf.csr -subj "/CN=localhost" 2>/dev/null
sign leaf.csr ca leaf 365 "$leaf_san" "extendedKeyUsage=serverAuth" "basicConstraints=CA:FALSE"
sign leaf.csr ca expired -1 "$leaf_san" "extendedKeyUsage=serverAuth" "basicConstraints=CA:FALSE"
sign leaf.csr ca2 untrusted 365 "$leaf_san" "extendedKeyUsage=serverAuth" "basicConstraints=CA:FALSE"
cp leaf.key expired.key
cp leaf.key untrusted.key

openssl req $ec -keyout wrong.key -out wrong.csr -subj "/CN=wrong.example" 2>/dev/null
sign wrong.csr ca wrong 365 "subjectAltName=DNS:wrong.example" "extendedKeyUsage=serverAuth" "basicConstraints=CA:FALSE"

openssl req -x509 $ec -keyout self.key -out self.pem -days 365 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null

openssl req $ec -keyout client.key -out client.csr -subj "/CN=xpio-client" 2>/dev/null
sign client.csr ca client 365 "extendedKeyUsage=clientAuth" "basicConstraints=CA:FALSE"

cat leaf.pem ca.pem > chain.pem
openssl pkey -in leaf.key -aes256 -passout pass:xpio-secret -out leaf-enc.key
rm -f ./*.csr ./*.srl

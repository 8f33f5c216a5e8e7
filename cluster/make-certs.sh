#!/usr/bin/env bash
# Certificates for a Dask cluster that runs TLS with mutual authentication: a private
# certificate authority (CA) of its own, and a certificate signed by it for the scheduler,
# for the workers and for the client (the preprocessing job). Every party presents its
# certificate and accepts only peers whose certificate this CA signed: a process without
# one, or with one of another authority, cannot join the cluster or submit work to it.
#
#   cluster/make-certs.sh DIR [DAYS]     # DAYS: validity, default 365
#
# Writes into DIR (created, mode 700):
#   ca.crt                  the CA's certificate: every party needs it (public)
#   ca.key                  the CA's key: signs certificates; keep it OFF the cluster's hosts
#   scheduler.crt/.key      for the scheduler
#   worker.crt/.key         for the workers (and their nannies)
#   client.crt/.key         for the job, and anything else that submits work
# Keys are mode 600. Existing files are never overwritten: the script stops instead (to
# renew, move the folder away and run it again, then restart the cluster).
#
# Dask checks the chain (not host names: one CA per cluster, no name checks), so the same
# certificates serve any host. Which settings point Dask at the files (the
# DASK_DISTRIBUTED__COMM__TLS__* variables): cluster/README.md, "TLS".
#
# Needs the `openssl` command (1.1.1 or later).
set -euo pipefail

usage() { echo "usage: $0 DIR [DAYS]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
DIR=$1
DAYS=${2:-365}
[[ "$DAYS" =~ ^[1-9][0-9]*$ ]] || { echo "$0: DAYS must be a positive number, got '$DAYS'" >&2; exit 2; }
command -v openssl >/dev/null 2>&1 || { echo "$0: the openssl command is not installed" >&2; exit 2; }

mkdir -p "$DIR"
chmod 700 "$DIR"
for name in ca scheduler worker client; do
    for ext in crt key; do
        if [[ -e "$DIR/$name.$ext" ]]; then
            echo "$0: $DIR/$name.$ext exists; not overwriting (move $DIR away to renew)" >&2
            exit 1
        fi
    done
done

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# the CA: an EC P-256 key, a self-signed certificate allowed to sign others only
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$work/ca.key" -out "$work/ca.crt" -days "$DAYS" -sha256 \
    -subj "/CN=splendor-il dask cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

cat >"$work/leaf.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
EOF

# every party both listens and connects (workers talk to each other): server and client use
for name in scheduler worker client; do
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$work/$name.key" -out "$work/$name.csr" \
        -subj "/CN=splendor-il dask $name" 2>/dev/null
    openssl x509 -req -in "$work/$name.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
        -CAcreateserial -out "$work/$name.crt" -days "$DAYS" -sha256 \
        -extfile "$work/leaf.ext" 2>/dev/null
    openssl verify -CAfile "$work/ca.crt" "$work/$name.crt" >/dev/null
done

for name in ca scheduler worker client; do
    chmod 600 "$work/$name.key"
    chmod 644 "$work/$name.crt"
    mv "$work/$name.key" "$work/$name.crt" "$DIR/"
done
echo "certificates for the scheduler, the workers and the client in $DIR (CA: $DIR/ca.crt," \
    "valid $DAYS days); keep $DIR/ca.key off the cluster"

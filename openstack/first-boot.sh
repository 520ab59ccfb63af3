#!/bin/sh
# First-boot steps of the IRaaS web tier that make its secrets on the server itself, so that none
# of them travels in the user data (Nova serves user data to every process on the server).
# Installed to /usr/local/lib/iraas/first-boot.sh and run by cloud-init (openstack/cloud-config.yaml).
#
#   first-boot.sh api-key          IRAAS_API_KEY in /etc/iraas/api.env (0600): read it with
#                                  `ssh <user>@<address> sudo cat /etc/iraas/api.env`
#   first-boot.sh self-signed NAME a self-signed certificate for NAME and this server's addresses in
#                                  /etc/iraas/tls/{cert,key}.pem (0600); its SHA-256 fingerprint goes
#                                  to the console, where `iraas openstack deploy` reads it to pin it
#
# Either step keeps what is already there (a rebuilt server, or a file the operator placed).
set -eu
etc=${IRAAS_ETC:-/etc/iraas}          # tests run it in a scratch folder
console=${IRAAS_CONSOLE:-/dev/console}
umask 077
mkdir -p "$etc"

case "${1:-}" in
api-key)
    if [ ! -s "$etc/api.env" ]; then
        printf 'IRAAS_API_KEY=%s\n' "$(openssl rand -hex 32)" > "$etc/api.env.new"
        mv -f "$etc/api.env.new" "$etc/api.env"
    fi
    ;;
self-signed)
    name=${2:?self-signed needs the server name}
    mkdir -p "$etc/tls"
    if [ ! -s "$etc/tls/key.pem" ] || [ ! -s "$etc/tls/cert.pem" ]; then
        # The name, and the addresses the server sees itself (a floating IP is NAT'd and unknown here:
        # clients on it pin the fingerprint, or connect by the name with their own hosts entry).
        san="DNS:$name"
        for ip in $(hostname -I 2>/dev/null || true); do san="$san,IP:$ip"; done
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
            -subj "/CN=$name" -addext "subjectAltName=$san" \
            -keyout "$etc/tls/key.pem.new" -out "$etc/tls/cert.pem.new" 2>/dev/null
        mv -f "$etc/tls/key.pem.new" "$etc/tls/key.pem"
        mv -f "$etc/tls/cert.pem.new" "$etc/tls/cert.pem"
    fi
    fingerprint=$(openssl x509 -in "$etc/tls/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2)
    # The console log carries it to the operator: only root writes the console, and Nova serves its
    # log only to the project, through its authenticated API (the metadata service is not involved).
    echo "iraas-tls-sha256: $fingerprint" > "$console" || echo "iraas-tls-sha256: $fingerprint"
    ;;
*)
    echo "usage: $0 api-key | self-signed NAME" >&2
    exit 2
    ;;
esac

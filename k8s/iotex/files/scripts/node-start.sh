#!/bin/sh
# Starts iotex-server in place of the image's entrypoint (which runs crond as root). The producer key is
# the Secret key named after this pod (bootnode-0, delegate-7) and reaches config.yaml as
# ${IOTEX_PRODUCER_PRIVKEY}, so it is never written into the ConfigMap. A bootstrap peer's P2P master key
# (p2p Secret) fixes its peer ID, which the other pods' bootstrap lists name; other pods fall back to
# their producer key. The init container `p2p` wrote this pod's bootstrap list into the overlay below.
set -eu
self="${IOTEX_ROLE}-${POD_NAME##*-}"
key_file="/etc/iotex/keys/$self"
if [ ! -r "$key_file" ]; then
  echo "node-start: no producer key '$self' in the keys Secret (mounted at /etc/iotex/keys)" >&2
  exit 1
fi
IOTEX_PRODUCER_PRIVKEY="$(cat "$key_file")"
IOTEX_P2P_MASTER_KEY=""
if [ -r "/etc/iotex/p2p-keys/$self" ]; then
  IOTEX_P2P_MASTER_KEY="$(cat "/etc/iotex/p2p-keys/$self")"
fi
export IOTEX_PRODUCER_PRIVKEY IOTEX_P2P_MASTER_KEY
overlay=/etc/iotex/p2p/bootstrap.yaml
if [ -r "$overlay" ]; then
  exec iotex-server -config-path=/etc/iotex/config.yaml -secret-path="$overlay" -genesis-path=/etc/iotex/genesis.yaml -plugin=gateway
fi
exec iotex-server -config-path=/etc/iotex/config.yaml -genesis-path=/etc/iotex/genesis.yaml -plugin=gateway

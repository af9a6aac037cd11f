#!/bin/sh
# Starts iotex-server in place of the image's entrypoint (which runs crond as root). The producer key is
# the Secret key named after this pod (bootnode-0, delegate-7) and reaches config.yaml as
# ${IOTEX_PRODUCER_PRIVKEY}, so it is never written into the ConfigMap.
set -eu
ordinal="${POD_NAME##*-}"
key_file="/etc/iotex/keys/${IOTEX_ROLE}-${ordinal}"
if [ ! -r "$key_file" ]; then
  echo "node-start: no producer key '${IOTEX_ROLE}-${ordinal}' in the keys Secret (mounted at /etc/iotex/keys)" >&2
  exit 1
fi
IOTEX_PRODUCER_PRIVKEY="$(cat "$key_file")"
export IOTEX_PRODUCER_PRIVKEY
if [ -z "${IOTEX_P2P_MASTER_KEY:-}" ] && [ -r /etc/iotex/keys/bootnode-master-key ] && [ "$IOTEX_ROLE" = bootnode ]; then
  IOTEX_P2P_MASTER_KEY="$(cat /etc/iotex/keys/bootnode-master-key)"
  export IOTEX_P2P_MASTER_KEY
fi
export IOTEX_P2P_MASTER_KEY="${IOTEX_P2P_MASTER_KEY:-}"
exec iotex-server -config-path=/etc/iotex/config.yaml -genesis-path=/etc/iotex/genesis.yaml -plugin=gateway

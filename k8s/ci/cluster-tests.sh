#!/usr/bin/env bash
# The chart on a real Kubernetes control plane (scripts/test.sh runs this): brings one up with
# control-plane.sh (built from pinned Go modules; ~15-35 min the first time on 2 cores, cached after), runs
# cluster_tests.py against it (testing/21, production/101, staging/21: install, workloads, helm test,
# backups, upgrade, rollback, refusals, uninstall) and always takes it down again.
#   CLUSTER_TESTS_ONLY=testing/21   run only some cases (comma-separated)
#   CLUSTER_TESTS_KEEP=1            leave the control plane up afterwards (`control-plane.sh down DIR` later)
#   CLUSTER_TESTS_CHART=DIR         test another copy of the chart (e.g. an older commit's, to see a test fail)
set -euo pipefail
ci="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
started=$SECONDS
dir="$(mktemp -d "${TMPDIR:-/tmp}/iotex-cluster.XXXXXX")"
rc=1
cleanup() {
  if [ "${CLUSTER_TESTS_KEEP:-0}" = 1 ]; then
    echo "cluster-tests: control plane left running in $dir (. $dir/env; bash $ci/control-plane.sh down $dir)"
  else
    bash "$ci/control-plane.sh" down "$dir" || true
    if [ "$rc" = 0 ]; then rm -rf "$dir"; else rm -rf "$dir/etcd" "$dir/pki"; echo "cluster-tests: logs in $dir/logs"; fi
  fi
}
trap cleanup EXIT
bash "$ci/control-plane.sh" up "$dir"
# shellcheck disable=SC1091
. "$dir/env"
echo "cluster-tests: kubectl $(kubectl version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'), $(helm version --short)"
rc=0
timeout 1800 python3 "$ci/cluster_tests.py" --work "$dir" --only "${CLUSTER_TESTS_ONLY:-}" \
  ${CLUSTER_TESTS_CHART:+--chart "$CLUSTER_TESTS_CHART"} || rc=$?
echo "cluster-tests: finished in $((SECONDS - started))s"
exit "$rc"

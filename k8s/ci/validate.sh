#!/usr/bin/env bash
# Validates the Helm chart k8s/iotex offline, as scripts/test.sh (and so CI) runs it:
#   tools      pinned helm, kubernetes-validate, yamllint, moto, checkov, hadolint, CRD models, promtool,
#              rclone, busybox (install-tools.sh)
#   drift      values.schema.json and the dashboards match their generators
#   yamllint   the chart's own YAML, then every rendered manifest
#   per environment x size: helm lint --strict, helm template
#   schemas    every rendered object against the Kubernetes schemas (unknown non-CRD kinds fail)
#   CRDs       ServiceMonitor and PrometheusRule objects against the prometheus-operator models
#   policy     checkov on the rendered manifests (documented skips)
#   promtool   check rules + unit tests of the alert rules; every dashboard panel's PromQL
#   gateway    the real iotex-gateway's check-config on the rendered gateway.toml (when the workspace is built)
#   injector   the real iotex-injector accepts the rendered Job flags (when the workspace is built)
#   assertions behavioural checks over the rendered output (assertions.py)
#   images     hadolint on gateway/Dockerfile and injector/Dockerfile (there is no Docker engine to build them)
#   backup     backup/restore scripts run for real against moto (S3) on 127.0.0.1 with rclone
# Every step runs even after a failure; the script ends with the failed steps and exits 1 if any.
set -uo pipefail
ci="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
k8s="$(cd "$ci/.." && pwd)"
chart="$k8s/iotex"
tools="$k8s/.tools"
started=$(date +%s)
envs=(testing staging production)
sizes=(21 101)

bash "$ci/install-tools.sh" || { echo "validate: FAILED to install the validation tools (see above)" >&2; exit 1; }
export PATH="$tools/bin:$PATH"
py="$tools/venv/bin/python"
helm="$tools/bin/helm"
out="$tools/rendered"
rm -rf "$out" && mkdir -p "$out"

passed=0
failed_steps=()
step() {
  local name="$1"; shift
  printf '\n--- %s (%ss)\n' "$name" "$(( $(date +%s) - started ))"
  if "$@"; then
    passed=$((passed + 1))
  else
    echo "validate: FAILED: $name" >&2
    failed_steps+=("$name")
  fi
}

drift() {
  local tmp rc=0
  tmp="$(mktemp -d)"
  (cd "$tmp" && "$py" "$ci/gen_schema.py") && cmp "$tmp/values.schema.json" "$chart/values.schema.json" \
    || { echo "values.schema.json differs from k8s/ci/gen_schema.py: regenerate it (cd k8s/iotex && python3 ../ci/gen_schema.py)"; rc=1; }
  "$py" "$ci/gen_dashboards.py" "$tmp" && diff -r -q "$tmp" "$chart/files/dashboards" -x values.schema.json \
    || { echo "dashboards differ from k8s/ci/gen_dashboards.py: regenerate them"; rc=1; }
  rm -rf "$tmp"
  return $rc
}

lint_and_render() {
  local env size rc=0
  for env in "${envs[@]}"; do
    for size in "${sizes[@]}"; do
      local values=(-f "$chart/values-$env.yaml" -f "$chart/values-$size.yaml")
      # staging and production refuse to render until the operator names the image registry
      [ "$env" = testing ] || values+=(-f "$ci/values-ci-images.yaml")
      "$helm" lint --strict --quiet "$chart" "${values[@]}" >"$out/lint-$env-$size.log" 2>&1 \
        || { echo "helm lint --strict failed for $env x $size:"; cat "$out/lint-$env-$size.log"; rc=1; }
      "$helm" template "$env" "$chart" -n "iotex-$env" "${values[@]}" >"$out/$env-$size.yaml" \
        || { echo "helm template failed for $env x $size"; rc=1; }
      echo "$env x $size: lint ok, $(grep -c '^kind:' "$out/$env-$size.yaml") objects"
    done
  done
  # Every optional part switched on at once, so every template is validated.
  "$helm" template all "$chart" -n iotex-all -f "$chart/values-testing.yaml" -f "$chart/values-21.yaml" \
    --set injector.job.enabled=true --set injector.soak.enabled=true --set logging.enabled=true \
    --set gateway.autoscaling.enabled=true --set injector.keyMode=keysFile --set injector.secret.keysFile=k \
    --set-string 'injector.run.steps=100@30s\,200@1m' --set-string 'injector.run.failIf=error_rate>0.01\,inclusion_p99_ms>5000' \
    >"$out/all-features.yaml" || { echo "helm template with every feature on failed"; rc=1; }
  # A sharded load run (Indexed Job, merge Job, PodMonitor), kept out of all-features.yaml so that the
  # injector flag check below runs only the flags today's binary has.
  "$helm" template shards "$chart" -n iotex-shards -f "$chart/values-testing.yaml" -f "$chart/values-21.yaml" \
    --set injector.job.enabled=true --set injector.shards=4 >"$out/shards.yaml" \
    || { echo "helm template with injector.shards=4 failed"; rc=1; }
  return $rc
}

yaml_lint() {
  "$tools/venv/bin/yamllint" -s -c "$ci/yamllint.yaml" "$chart"/values*.yaml "$chart/Chart.yaml" \
    "$chart/files/prometheus" "$chart/files/logging" "$ci/promtool" "$ci"/*.yaml \
  && "$tools/venv/bin/yamllint" -s -c "$ci/yamllint-rendered.yaml" "$out"/*.yaml
}

rules() {
  promtool check rules "$chart"/files/prometheus/*.yaml && promtool test rules "$ci"/promtool/*.test.yaml
}

scripts_syntax() {
  local f rc=0
  for f in "$chart"/files/scripts/*.sh; do
    busybox sh -n "$f" || { echo "busybox sh cannot parse $f"; rc=1; }
  done
  return $rc
}

# The real gateway must accept the rendered gateway.toml. When the workspace has been built (scripts/test.sh
# builds it before running this), the gateway binary is brought up to date (incremental, debug) and its
# `check-config` runs on two renders. Skipped, with a note, when nothing was built or when the binary does
# not yet tell a valid config (minimal) from an invalid one (unknown key): the gateway is developed
# alongside the chart.
gateway_check_config() {
  local repo bin tmp f rc=0
  repo="$(cd "$k8s/.." && pwd)"
  bin="$repo/target/debug/iotex-gateway"
  if ! command -v cargo >/dev/null 2>&1 || [ ! -d "$repo/target/debug" ]; then
    echo "skipped: the workspace has not been built here (run scripts/test.sh for this check)"; return 0
  fi
  (cd "$repo" && cargo build --locked --quiet -p iotex-gateway --bin iotex-gateway) \
    || { echo "cargo build -p iotex-gateway failed"; return 1; }
  tmp="$(mktemp -d)"
  printf 'upstream = ["a=http://127.0.0.1:15014"]\n' >"$tmp/minimal.toml"
  printf 'upstream = ["a=http://127.0.0.1:15014"]\nno-such-key = 1\n' >"$tmp/invalid.toml"
  if ! "$bin" check-config "$tmp/minimal.toml" >/dev/null 2>&1 || "$bin" check-config "$tmp/invalid.toml" >/dev/null 2>&1; then
    echo "skipped: this iotex-gateway's check-config does not validate configs yet"; rm -rf "$tmp"; return 0
  fi
  for f in "$out"/testing-21.yaml "$out"/production-101.yaml; do
    "$py" -c 'import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-gateway-config"):
        sys.stdout.write(d["data"]["gateway.toml"])' "$f" >"$tmp/gateway.toml"
    if "$bin" check-config "$tmp/gateway.toml" >"$tmp/check.log" 2>&1; then
      echo "iotex-gateway check-config accepts the gateway.toml of $(basename "$f")"
    else
      cat "$tmp/check.log"; echo "iotex-gateway rejects the gateway.toml rendered in $(basename "$f")"; rc=1
    fi
  done
  rm -rf "$tmp"
  return $rc
}

# The real iotex-injector must accept the flags the chart gives it. Same conditions as the gateway check;
# each rendered Job's args run against a closed loopback port: exit 2 means the chart's flags are wrong,
# exit 1 ("endpoint not reachable at start") means they were accepted.
injector_flags_check() {
  local repo bin tmp f rc=0 code
  repo="$(cd "$k8s/.." && pwd)"
  bin="$repo/target/debug/iotex-injector"
  if [ ! -f "$repo/injector/Cargo.toml" ] || ! command -v cargo >/dev/null 2>&1 || [ ! -d "$repo/target/debug" ]; then
    echo "skipped: no built injector crate here (run scripts/test.sh for this check)"; return 0
  fi
  (cd "$repo" && cargo build --locked --quiet -p iotex-injector --bin iotex-injector) \
    || { echo "cargo build -p iotex-injector failed"; return 1; }
  if "$bin" run --no-such-flag >/dev/null 2>&1; [ $? -ne 2 ]; then
    echo "skipped: this iotex-injector does not reject unknown flags with exit 2 yet"; return 0
  fi
  tmp="$(mktemp -d)"
  echo ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80 >"$tmp/keys"
  "$helm" template ci "$chart" -f "$chart/values-testing.yaml" -f "$chart/values-21.yaml" \
    --set injector.job.enabled=true >"$tmp/mnemonic.yaml" || rc=1
  for f in "$tmp/mnemonic.yaml" "$out/all-features.yaml" "$out/shards.yaml"; do
    # args as rendered (endpoint, report, metrics and keys file pointed here), env as the pod gets it from
    # the rendered Secret (an optional key that is absent stays unset)
    "$py" - "$f" "$tmp" >"$tmp/args" 2>"$tmp/env" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
secrets = {d["metadata"]["name"]: d.get("stringData") or {} for d in docs if d["kind"] == "Secret"}
for d in docs:
    # The injector's load-run Job only: other Jobs (the logging ILM hook, backups) run other programs.
    if d["kind"] == "Job" and d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "injector":
        # A shard runs the injector as an init container (its upload runs after it): find it by name.
        spec = d["spec"]["template"]["spec"]
        c = next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "iotex-injector")
        env = {}
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            value = secrets.get(ref["name"], {}).get(ref["key"]) if ref else e.get("value")
            # A shard's index comes from its pod's completion-index annotation (fieldRef): shard 0 here.
            if e.get("valueFrom", {}).get("fieldRef"):
                value = "0"
            if value is not None:
                env[e["name"]] = value
                print(f"{e['name']}={value}", file=sys.stderr)
        for a in c["args"]:
            k = a.split("=", 1)[0]
            a = {"--endpoint": "--endpoint=http://127.0.0.1:9", "--report": f"--report={sys.argv[2]}/report.json",
                 "--histogram-log": f"--histogram-log={sys.argv[2]}/histogram.hlog",
                 "--metrics-listen": "--metrics-listen=127.0.0.1:0", "--keys-file": f"--keys-file={sys.argv[2]}/keys"}.get(k, a)
            # Kubernetes expands $(NAME) in args from the container's env, as the kubelet would.
            for name, value in env.items():
                a = a.replace(f"$({name})", value)
            print(a)
PY
    mapfile -t args <"$tmp/args"
    mapfile -t envs <"$tmp/env"
    env "${envs[@]}" timeout 60 "$bin" "${args[@]}" >"$tmp/log" 2>&1
    code=$?
    if [ "$code" = 1 ] && grep -q "not reachable" "$tmp/log"; then
      echo "iotex-injector accepts the flags of the Job in $(basename "$f"): ${args[*]}"
    else
      tail -5 "$tmp/log"; echo "iotex-injector exit $code for the Job in $(basename "$f"): ${args[*]}"; rc=1
    fi
  done
  injector_merge_flags_check "$tmp" || rc=1
  rm -rf "$tmp"
  return $rc
}

# The merge Job's iotex-injector container (injector.shards > 1): its flags are accepted when merge gets
# past parsing and refuses the first shard report, which is not there (exit 2 naming it, "cannot read");
# a flag the binary does not know is clap's exit 2 with "unexpected argument" instead.
injector_merge_flags_check() {
  local tmp="$1" code
  mapfile -t args < <("$py" - "$out/shards.yaml" "$tmp" <<'PY'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "Job" and d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "injector-merge":
        for c in d["spec"]["template"]["spec"].get("initContainers", []):
            if c["name"] == "merge":
                for a in c["args"]:
                    print(a.replace("/results/", f"{sys.argv[2]}/results/"))
PY
)
  [ "${#args[@]}" -gt 0 ] || { echo "no merge container in the injector.shards=4 render"; return 1; }
  "$bin" "${args[@]}" >"$tmp/log" 2>&1
  code=$?
  if [ "$code" = 2 ] && grep -q "shards/0/report.json: cannot read" "$tmp/log"; then
    echo "iotex-injector accepts the flags of the merge Job: ${args[*]}"
  else
    tail -5 "$tmp/log"; echo "iotex-injector merge exit $code for the merge Job: ${args[*]}"; return 1
  fi
}

# Checks skipped for the whole chart, and why: namespaces come from `helm install -n` (21); tags are pinned
# in values, digests are the operator's choice (43); IfNotPresent with pinned tags (15); no CPU limits on
# purpose, they throttle nodes and the gateway (11); rclone and the injector read credentials from env (35).
# Per-object exceptions carry checkov.io/skip annotations with their reason in the templates.
policy() {
  local args=() f
  for f in "$out"/*.yaml; do args+=(-f "$f"); done
  # --skip-download: offline, checkov must not call its vendor's API
  "$tools/checkov/bin/checkov" "${args[@]}" --framework kubernetes --quiet --compact --skip-download \
    --skip-check CKV_K8S_21,CKV_K8S_43,CKV_K8S_15,CKV_K8S_11,CKV_K8S_35
}

step "generated files up to date" drift
step "helm lint --strict + helm template (3 environments x 2 sizes)" lint_and_render
step "yamllint (chart YAML and rendered manifests)" yaml_lint
step "Kubernetes schemas (kubernetes-validate, strict)" "$py" "$ci/check_k8s_schemas.py" "$out"/*.yaml
step "CRD models (ServiceMonitor, PodMonitor, PrometheusRule)" node "$ci/validate_crds.mjs" "$tools/npm/node_modules" "$out"/*.yaml
step "promtool check rules + test rules" rules
step "dashboard PromQL" "$py" "$ci/check_dashboards.py" "$chart/files/dashboards"
step "shell scripts parse under busybox sh" scripts_syntax
step "checkov policy checks (rendered manifests)" policy
step "hadolint (gateway/Dockerfile, injector/Dockerfile)" "$tools/venv/bin/hadolint" "$k8s/../gateway/Dockerfile" "$k8s/../injector/Dockerfile"
step "iotex-gateway check-config on the rendered gateway.toml" gateway_check_config
step "iotex-injector accepts the rendered Job flags" injector_flags_check
step "behavioural assertions" "$py" "$ci/assertions.py" --helm "$helm" --chart "$chart" --readme "$k8s/README.md"
# The sharded run's merge in the backup test uses the injector the flags check built, when there is one.
injector_bin="$(cd "$k8s/.." && pwd)/target/debug/iotex-injector"
[ -x "$injector_bin" ] || injector_bin=""
step "backup/restore against moto + rclone" env -u AWS_CA_BUNDLE IOTEX_INJECTOR_BIN="$injector_bin" "$py" "$ci/test_backup_restore.py"

elapsed=$(( $(date +%s) - started ))
echo
if [ "${#failed_steps[@]}" -gt 0 ]; then
  echo "validate: FAILED steps:"
  printf '  - %s\n' "${failed_steps[@]}"
fi
echo "k8s/ci/validate.sh finished in ${elapsed}s"
echo "validate: ${passed} passed, ${#failed_steps[@]} failed"
[ "${#failed_steps[@]}" -eq 0 ]

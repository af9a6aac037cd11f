// Validates every ServiceMonitor, PodMonitor (sharded injector runs) and PrometheusRule in rendered chart output against the
// prometheus-operator CRD models (@kubernetes-models/prometheus-operator, pinned in package-lock.json).
// usage: node validate_crds.mjs <node_modules dir> rendered.yaml...   Prints `N passed, N failed`.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [modulesArg, ...files] = process.argv.slice(2);
const modules = path.resolve(modulesArg);
const require = createRequire(path.join(modules, "noop.js"));
const yaml = require("js-yaml");
const base = path.join(modules, "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1");
const models = {
  ServiceMonitor: (await import(pathToFileURL(path.join(base, "ServiceMonitor.js")).href)).ServiceMonitor,
  PrometheusRule: (await import(pathToFileURL(path.join(base, "PrometheusRule.js")).href)).PrometheusRule,
  PodMonitor: (await import(pathToFileURL(path.join(base, "PodMonitor.js")).href)).PodMonitor,
};

let passed = 0, failed = 0;
const seen = { ServiceMonitor: 0, PrometheusRule: 0, PodMonitor: 0 };
for (const file of files) {
  for (const doc of yaml.loadAll(readFileSync(file, "utf8"))) {
    if (!doc || doc.apiVersion !== "monitoring.coreos.com/v1") continue;
    const Model = models[doc.kind];
    const name = `${path.basename(file)} ${doc.kind}/${doc.metadata?.name}`;
    if (!Model) { console.log(`FAIL ${name}: no model for this kind`); failed++; continue; }
    seen[doc.kind]++;
    try {
      new Model(doc).validate();
      passed++;
    } catch (e) {
      console.log(`FAIL ${name}: ${e.message}`);
      failed++;
    }
  }
}
// A render without these objects would "pass" silently: require that some were checked.
for (const [kind, n] of Object.entries(seen)) {
  if (n === 0) { console.log(`FAIL no ${kind} found in the rendered output`); failed++; }
}
console.log(`CRD models: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

// Validates Kubernetes objects against the prometheus-operator CRD schemas.
// Reads a JSON array of objects on stdin; prints one JSON line per object:
// {"kind", "name", "errors": [...]} and exits 1 when any object is invalid (2 on an unknown kind).
// The validators come from @kubernetes-models/prometheus-operator, installed by scripts/fetch-tools.sh
// into the folder named by ESENAS_PROMOP_MODULES (default: <repo>/.tools/promop/node_modules).
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const modules = process.env.ESENAS_PROMOP_MODULES || join(repo, ".tools", "promop", "node_modules");
const KINDS = ["ServiceMonitor", "PodMonitor", "PrometheusRule"];

const docs = JSON.parse(readFileSync(0, "utf8"));
let bad = 0;
for (const doc of docs) {
  const kind = doc.kind;
  if (doc.apiVersion !== "monitoring.coreos.com/v1" || !KINDS.includes(kind)) {
    console.error(`unsupported object: ${doc.apiVersion} ${kind}`);
    process.exit(2);
  }
  const file = join(modules, "@kubernetes-models", "prometheus-operator", "monitoring.coreos.com", "v1", `${kind}.js`);
  const Model = (await import(pathToFileURL(file).href))[kind];
  let errors = [];
  try {
    new Model(doc).validate();
  } catch (e) {
    errors = String(e.message).split("\n").filter((s) => s.trim());
    bad += 1;
  }
  console.log(JSON.stringify({ kind, name: doc.metadata?.name ?? "", errors }));
}
process.exit(bad ? 1 : 0);

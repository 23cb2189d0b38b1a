// Validates Kubernetes objects offline against the schemas of the Kubernetes
// API (kubernetes-models) and of prometheus-operator's CRDs
// (@kubernetes-models/prometheus-operator): types, required fields, enums and
// formats, as the API server's OpenAPI schema states them.
//
// Input: a JSON array of objects on stdin. Output: one JSON line per object,
// {"kind","name","errors":[...]}; an object of a kind neither package knows
// is an error too (fail closed). Exit status 0 even when objects are invalid:
// the caller (the chart tests) reads the lines.
import { readFileSync } from "node:fs";

const packages = { "monitoring.coreos.com": "@kubernetes-models/prometheus-operator" };

async function modelFor(apiVersion, kind) {
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
  const pkg = packages[group] ?? "kubernetes-models";
  const mod = await import(`${pkg}/${apiVersion}`);
  return mod[kind];
}

const objects = JSON.parse(readFileSync(0, "utf8"));
for (const obj of objects) {
  const out = { kind: obj?.kind, name: obj?.metadata?.name, errors: [] };
  try {
    const Model = await modelFor(String(obj.apiVersion), String(obj.kind));
    if (!Model) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`);
    new Model(obj).validate();
  } catch (err) {
    out.errors.push(String(err.message ?? err));
  }
  console.log(JSON.stringify(out));
}

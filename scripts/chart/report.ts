// Prints what the chart tests would complain about, for one value set, without vitest:
//
//   npx tsx scripts/chart/report.ts                         # defaults
//   npx tsx scripts/chart/report.ts istio-off.yaml          # a file from scripts/chart/values/ (or a path)
//   npx tsx scripts/chart/report.ts --set mirrorPercentage=10
//   npx tsx scripts/chart/report.ts two-candidates.yaml     # two candidates
import { checkMirroring, checkModelServiceRoles, genericChecks } from "./checks.js";
import { ensureHelm } from "./helm.js";
import { validateAll } from "./k8s-validate.js";
import { expectations, helmLint, helmTemplate, NAMESPACE, type ValueArgs } from "./render.js";

const values: Required<ValueArgs> = { files: [], set: {}, setJson: {} };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i] as string;
  if (a === "--set") {
    const [k, ...v] = String(argv[++i]).split("=");
    values.set[k as string] = v.join("=");
  } else values.files.push(a);
}

const helm = await ensureHelm();
const lint = helmLint(helm, values);
console.log(`helm lint --strict: exit ${lint.code}`);
if (lint.code !== 0) console.log(lint.stdout + lint.stderr);
const objects = helmTemplate(helm, values).map((r) => r.obj);
console.log(
  `helm template: ${objects.length} objects: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(", ")}`,
);
const show = (title: string, problems: string[]) => {
  console.log(`${problems.length === 0 ? "ok  " : "FAIL"} ${title}`);
  for (const p of problems) console.log(`       ${p}`);
};
const want = expectations(values);
show("models (schema + unknown fields)", await validateAll(objects));
for (const [name, problems] of Object.entries(genericChecks(objects, NAMESPACE, want))) show(name, problems);
show("modelServiceRoles", checkModelServiceRoles(objects, want.candidates));
show(
  `mirroring (${want.istio ? "Istio" : "no Istio"}, ${want.candidates.map((c) => `${c.name} ${c.percent} %`).join(", ") || "no candidate"})`,
  checkMirroring(objects, NAMESPACE, want),
);

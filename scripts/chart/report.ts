// Prints what the chart tests would complain about, for one value set, without vitest:
//
//   npx tsx scripts/chart/report.ts                         # defaults
//   npx tsx scripts/chart/report.ts istio-off.yaml          # a file from scripts/chart/values/ (or a path)
//   npx tsx scripts/chart/report.ts --set mirrorPercentage=10
import { checkMirroring, checkModelServiceRoles, genericChecks } from "./checks.js";
import { ensureHelm } from "./helm.js";
import { validateAll } from "./k8s-validate.js";
import { externalPrincipals, helmLint, helmTemplate, NAMESPACE, type ValueArgs } from "./render.js";

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
show("models (schema + unknown fields)", await validateAll(objects));
for (const [name, problems] of Object.entries(
  genericChecks(objects, NAMESPACE, { externalPrincipals: externalPrincipals() }),
))
  show(name, problems);
const istio = objects.some((o) => o.apiVersion.includes(".istio.io/"));
const percent = Number(values.set.mirrorPercentage ?? Number.NaN);
show("modelServiceRoles", checkModelServiceRoles(objects, true));
if (!Number.isNaN(percent) || values.files.length === 0) {
  show(
    `mirroring (${istio ? "istio" : "no istio"})`,
    checkMirroring(objects, NAMESPACE, { istio, percent: Number.isNaN(percent) ? 100 : percent }),
  );
}

// Flagger's MetricTemplate (flagger.app/v1beta1), checked field by field. No npm package models Flagger's CRDs, so
// this transcribes the `openAPIV3Schema` of `metrictemplates.flagger.app` in Flagger v1.44.0
// (artifacts/flagger/crd.yaml): spec.provider {type (enum), address, headers, secretRef {name}, region,
// insecureSkipVerify} and spec.query, both required. Like k8s-validate.ts it is fail-closed: any field not listed is
// reported as unknown.
export const FLAGGER_API_VERSION = "flagger.app/v1beta1";

const PROVIDER_TYPES = [
  "prometheus",
  "influxdb",
  "datadog",
  "externalmetrics",
  "stackdriver",
  "cloudwatch",
  "newrelic",
  "graphite",
  "dynatrace",
  "keptn",
  "splunk",
];

type Check = (value: unknown, path: string, out: string[]) => void;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const string: Check = (v, path, out) => {
  if (typeof v !== "string") out.push(`${path}: must be a string`);
};
const boolean: Check = (v, path, out) => {
  if (typeof v !== "boolean") out.push(`${path}: must be a boolean`);
};
const enumOf =
  (values: string[]): Check =>
  (v, path, out) => {
    if (typeof v !== "string" || !values.includes(v))
      out.push(`${path}: must be one of ${values.join(", ")}`);
  };
const mapOf =
  (item: Check): Check =>
  (v, path, out) => {
    if (!isObject(v)) {
      out.push(`${path}: must be an object`);
      return;
    }
    for (const [k, x] of Object.entries(v)) item(x, `${path}.${k}`, out);
  };
const arrayOf =
  (item: Check): Check =>
  (v, path, out) => {
    if (!Array.isArray(v)) {
      out.push(`${path}: must be an array`);
      return;
    }
    v.forEach((x, i) => {
      item(x, `${path}[${i}]`, out);
    });
  };
const object =
  (fields: Record<string, Check>, required: string[] = []): Check =>
  (v, path, out) => {
    if (!isObject(v)) {
      out.push(`${path}: must be an object`);
      return;
    }
    for (const r of required) if (!(r in v)) out.push(`${path}.${r}: required`);
    for (const [k, x] of Object.entries(v)) {
      const check = fields[k];
      if (check) check(x, `${path}.${k}`, out);
      else out.push(`unknown field ${path.replace(/^\./, "")}${path ? "." : ""}${k}`.replace(/^\./, ""));
    }
  };

const metadata = object(
  { name: string, namespace: string, labels: mapOf(string), annotations: mapOf(string) },
  ["name"],
);

const metricTemplate = object(
  {
    apiVersion: enumOf([FLAGGER_API_VERSION]),
    kind: enumOf(["MetricTemplate"]),
    metadata,
    spec: object(
      {
        provider: object(
          {
            type: enumOf(PROVIDER_TYPES),
            address: string,
            headers: mapOf(arrayOf(string)),
            secretRef: object({ name: string }, ["name"]),
            region: string,
            insecureSkipVerify: boolean,
          },
          ["type"],
        ),
        query: string,
      },
      ["provider", "query"],
    ),
  },
  ["apiVersion", "kind", "metadata", "spec"],
);

/** Problems with a MetricTemplate (empty = valid). */
export function validateFlaggerMetricTemplate(obj: unknown): string[] {
  const out: string[] = [];
  metricTemplate(obj, "", out);
  return out.map((e) => e.replace(/^\./, ""));
}

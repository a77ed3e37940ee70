import { invalidConfig } from "@shadowmesh/common";

/**
 * The shadows (candidates) app-service mirrors to in local mode: `APP_SERVICE_SHADOWS`, or the one shadow of
 * `APP_SERVICE_SHADOW_ADDRESS` (+ `SHADOW_NAME`, `MIRROR_PERCENT`, `MAX_MIRRORS_IN_FLIGHT`).
 *
 * Syntax of `APP_SERVICE_SHADOWS`: comma-separated entries, each `NAME=HOST:PORT` followed by optional
 * `;percent=P` (0-100) and `;inflight=N` (a non-negative integer), e.g.
 *
 *     spam-v2=127.0.0.1:50052,spam-lite=127.0.0.1:50054;percent=50;inflight=16
 *
 * An entry without `percent` / `inflight` takes `APP_SERVICE_MIRROR_PERCENT` / `APP_SERVICE_MAX_MIRRORS_IN_FLIGHT`.
 * NAME is the candidate's model name: the model name its model-service reports (metrics-service names candidates by
 * it), put on the records of its failed mirrored calls and on the `shadow` label of the mirror metrics.
 */
export interface ShadowTarget {
  /** The `shadow` label of its mirror metrics: the configured name, or for an unnamed SHADOW_ADDRESS the address. */
  readonly name: string;
  /** The configured model name; "" = learnt from the shadow's answers (SHADOW_ADDRESS without SHADOW_NAME). */
  readonly modelName: string;
  /** host:port of its model-service (gRPC). */
  readonly address: string;
  /** Share of Predict/PredictBatch calls mirrored to it, 0-100. */
  readonly percent: number;
  /** Most of its mirrored calls in flight at once; beyond it a mirror is dropped and counted. */
  readonly maxInFlight: number;
}

/** A model name as a candidate is named: letters, digits, `.`, `_`, `-`; at most 64 characters. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ADDRESS = /^(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$/;

export interface ShadowSettings {
  SHADOWS: string;
  SHADOW_ADDRESS: string;
  SHADOW_NAME: string;
  MIRROR_PERCENT: number;
  MAX_MIRRORS_IN_FLIGHT: number;
  MODEL_SERVICE_ADDRESS: string;
}

/** Reads and checks the shadows (`prefix` names the settings in errors); empty = no local mirroring. */
export function readShadows(prefix: string, config: ShadowSettings): ShadowTarget[] {
  const fail = (message: string): never => invalidConfig(`${prefix}${message}`);
  const list = config.SHADOWS.trim();
  if (list !== "" && config.SHADOW_ADDRESS !== "") {
    fail(`SHADOWS and ${prefix}SHADOW_ADDRESS are both set: list every shadow in SHADOWS`);
  }
  if (config.SHADOW_NAME !== "" && config.SHADOW_ADDRESS === "") {
    fail(
      `SHADOW_NAME names the shadow at ${prefix}SHADOW_ADDRESS, which is empty${list === "" ? "" : ` (in ${prefix}SHADOWS every entry is NAME=HOST:PORT)`}`,
    );
  }
  if (config.SHADOW_NAME !== "" && !NAME.test(config.SHADOW_NAME)) {
    fail(
      `SHADOW_NAME: "${config.SHADOW_NAME}" is not a model name (letters, digits, ".", "_", "-"; at most 64)`,
    );
  }
  const shadows: ShadowTarget[] =
    list === ""
      ? config.SHADOW_ADDRESS === ""
        ? []
        : [
            {
              name: config.SHADOW_NAME || config.SHADOW_ADDRESS,
              modelName: config.SHADOW_NAME,
              address: config.SHADOW_ADDRESS,
              percent: config.MIRROR_PERCENT,
              maxInFlight: config.MAX_MIRRORS_IN_FLIGHT,
            },
          ]
      : list.split(",").map((entry) => parseEntry(entry.trim(), config, (why) => fail(`SHADOWS: ${why}`)));
  const names = new Set<string>();
  const addresses = new Set<string>();
  for (const shadow of shadows) {
    if (names.has(shadow.name)) {
      fail(`SHADOWS: the name "${shadow.name}" is given twice (each candidate once)`);
    }
    if (addresses.has(shadow.address)) {
      fail(`SHADOWS: the address ${shadow.address} is given twice (one model-service serves one candidate)`);
    }
    if (shadow.address === config.MODEL_SERVICE_ADDRESS) {
      fail(
        `${list === "" ? "SHADOW_ADDRESS" : `SHADOWS: "${shadow.name}"`} must differ from ${prefix}MODEL_SERVICE_ADDRESS (mirroring to the primary)`,
      );
    }
    names.add(shadow.name);
    addresses.add(shadow.address);
  }
  return shadows;
}

function parseEntry(entry: string, defaults: ShadowSettings, fail: (why: string) => never): ShadowTarget {
  const [target = "", ...options] = entry.split(";").map((part) => part.trim());
  const equals = target.indexOf("=");
  if (entry === "" || equals === -1) {
    fail(`entry "${entry}" is not NAME=HOST:PORT[;percent=P][;inflight=N]`);
  }
  const name = target.slice(0, equals).trim();
  const address = target.slice(equals + 1).trim();
  if (!NAME.test(name)) {
    fail(`entry "${entry}": "${name}" is not a model name (letters, digits, ".", "_", "-"; at most 64)`);
  }
  if (!ADDRESS.test(address)) {
    fail(`entry "${entry}": "${address}" is not host:port`);
  }
  let percent = defaults.MIRROR_PERCENT;
  let maxInFlight = defaults.MAX_MIRRORS_IN_FLIGHT;
  const seen = new Set<string>();
  for (const option of options) {
    const [key = "", value = "", ...extra] = option.split("=").map((part) => part.trim());
    if (seen.has(key)) {
      fail(`entry "${entry}": ${key} is given twice`);
    }
    seen.add(key);
    const number = value === "" || extra.length > 0 ? Number.NaN : Number(value);
    if (key === "percent") {
      if (!(number >= 0 && number <= 100)) {
        fail(`entry "${entry}": percent must be between 0 and 100, got "${value}"`);
      }
      percent = number;
    } else if (key === "inflight") {
      if (!(Number.isInteger(number) && number >= 0)) {
        fail(`entry "${entry}": inflight must be a non-negative integer, got "${value}"`);
      }
      maxInFlight = number;
    } else {
      fail(`entry "${entry}": unknown option "${option}" (percent=P, inflight=N)`);
    }
  }
  return { name, modelName: name, address, percent, maxInFlight };
}

/** One line for the start-up log. */
export function describeShadows(shadows: readonly ShadowTarget[]): string {
  return shadows.length === 0
    ? "off"
    : shadows
        .map(
          (s) =>
            `${s.percent}% to ${s.name === s.address ? "" : `${s.name} at `}${s.address} (≤ ${s.maxInFlight} in flight)`,
        )
        .join(", ");
}

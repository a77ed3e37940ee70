import { PREFIX, spec } from "../config.js";

/** The README's settings table, generated from the same spec that `--help` prints. */
export function settingsTable(): string {
  const rows = Object.entries(spec).map(([key, validator]) => {
    const def = JSON.stringify(validator.default);
    return `| \`${PREFIX}${key}\` | \`${def}\` | ${(validator.desc ?? "").replaceAll("|", "\\|")} |`;
  });
  return ["| Setting | Default | Description |", "|---|---|---|", ...rows].join("\n");
}

if (process.argv[1]?.endsWith("settings-table.ts")) {
  console.log(settingsTable());
}

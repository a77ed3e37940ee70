import { PREFIX, spec } from "../config.js";

/** The README's settings table, from the same spec that `--help` prints. */
export function settingsTable(): string {
  const rows = Object.entries(spec).map(([key, validator]) => {
    const value = validator.default === undefined ? "(required)" : JSON.stringify(validator.default);
    return `| \`${PREFIX}${key}\` | \`${value}\` | ${(validator.desc ?? "").replaceAll("|", "\\|")} |`;
  });
  return ["| Setting | Default | Description |", "| --- | --- | --- |", ...rows].join("\n");
}

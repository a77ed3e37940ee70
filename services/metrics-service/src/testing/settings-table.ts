import { settingsTable as table } from "@shadowmesh/common";
import { PREFIX, spec } from "../config.js";

/** The README's settings table, generated from the same spec that `--help` prints. */
export const settingsTable = (): string => table(PREFIX, spec);

if (process.argv[1]?.endsWith("settings-table.ts")) {
  console.log(settingsTable());
}

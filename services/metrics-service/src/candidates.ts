/**
 * Candidates (issue 15): the shadow models compared with the primary, each named by the model name its SHADOW
 * records carry. What a name may be, and the per-candidate expected mirror shares of the configuration.
 */

/** The longest candidate name (a SHADOW record's model name, or a report's candidate selector). */
export const MAX_CANDIDATE_LENGTH = 256;

/**
 * Why a candidate name is unusable, or undefined: at most MAX_CANDIDATE_LENGTH characters, none of them a control
 * character (any other Unicode is fine). The empty name is valid: as a selector it asks for the only candidate.
 */
export function candidateProblem(name: string): string | undefined {
  if (name.length > MAX_CANDIDATE_LENGTH) {
    return `must be at most ${MAX_CANDIDATE_LENGTH} characters (got ${name.length})`;
  }
  if (/\p{Cc}/u.test(name)) {
    return "must not contain control characters";
  }
  return undefined;
}

/**
 * Parses METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS: a comma-separated list of `name=percent` (for example
 * `spam-v2=100,spam-lite=50`), each percent from 0 to 100, each name once; empty: no candidate has its own. Returns
 * the shares (0–1) by candidate name; throws an Error with one readable line for a bad entry.
 */
export function parseMirrorPercents(text: string): Map<string, number> {
  const ratios = new Map<string, number>();
  if (text.trim() === "") {
    return ratios;
  }
  text.split(",").forEach((raw, i) => {
    const entry = raw.trim();
    const at = entry.lastIndexOf("=");
    const where = `entry ${i + 1} (${JSON.stringify(entry.slice(0, 80))})`;
    if (at <= 0) {
      throw new Error(`${where} must be name=percent, for example spam-v2=100`);
    }
    const name = entry.slice(0, at).trim();
    const percentText = entry.slice(at + 1).trim();
    const percent = Number(percentText);
    const problem = candidateProblem(name);
    if (problem) {
      throw new Error(`${where}: the name ${problem}`);
    }
    if (percentText === "" || !Number.isFinite(percent) || percent < 0 || percent > 100) {
      throw new Error(`${where}: the percent must be a number from 0 to 100`);
    }
    if (ratios.has(name)) {
      throw new Error(`${where}: ${JSON.stringify(name)} is listed twice`);
    }
    ratios.set(name, percent / 100);
  });
  return ratios;
}

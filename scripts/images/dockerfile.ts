/**
 * Just enough of Docker's file formats to check the Dockerfile without a Docker engine: the instructions of a
 * Dockerfile grouped into stages (with what a stage inherits from the stage it is built FROM), and the
 * `.dockerignore` matching rules of the BuildKit context (moby/patternmatcher). Anything this parser does not
 * understand is an error, never silently skipped: the checks built on it must not pass by accident.
 */

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, … */
  readonly keyword: string;
  /** Everything after the keyword, continuation lines joined. */
  readonly args: string;
  /** 1-based line of the keyword. */
  readonly line: number;
}

export interface Stage {
  readonly index: number;
  /** The name after AS, if any. */
  readonly name: string | undefined;
  /** The FROM reference with ARG values substituted. */
  readonly from: string;
  readonly instructions: Instruction[];
}

export interface Dockerfile {
  readonly directives: Readonly<Record<string, string>>;
  /** ARGs declared before the first FROM, with their defaults. */
  readonly globalArgs: ReadonlyMap<string, string>;
  readonly stages: Stage[];
}

export class DockerfileError extends Error {
  override name = "DockerfileError";
}

const KEYWORDS = new Set([
  "ADD",
  "ARG",
  "CMD",
  "COPY",
  "ENTRYPOINT",
  "ENV",
  "EXPOSE",
  "FROM",
  "HEALTHCHECK",
  "LABEL",
  "ONBUILD",
  "RUN",
  "SHELL",
  "STOPSIGNAL",
  "USER",
  "VOLUME",
  "WORKDIR",
]);

/** Splits a Dockerfile into instructions and stages. */
export function parseDockerfile(text: string): Dockerfile {
  const lines = text.split(/\r?\n/);
  const directives: Record<string, string> = {};
  let index = 0;
  // Parser directives: `# name=value` lines at the very top, before any blank line, comment or instruction.
  for (; index < lines.length; index++) {
    const match = /^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(lines[index] ?? "");
    if (!match) {
      break;
    }
    directives[(match[1] as string).toLowerCase()] = match[2] as string;
  }
  const escapeChar = directives.escape ?? "\\";
  if (escapeChar !== "\\" && escapeChar !== "`") {
    throw new DockerfileError(`unsupported escape directive ${escapeChar}`);
  }

  const instructions: Instruction[] = [];
  let current: { text: string; line: number } | undefined;
  for (; index < lines.length; index++) {
    const raw = lines[index] ?? "";
    const trimmed = raw.trim();
    if (trimmed.startsWith("#") || (trimmed === "" && current === undefined)) {
      continue; // comments are dropped, even between continuation lines
    }
    const continues = trimmed.endsWith(escapeChar);
    const body = continues ? trimmed.slice(0, -1) : trimmed;
    if (current === undefined) {
      current = { text: body, line: index + 1 };
    } else {
      current.text += ` ${body}`;
    }
    if (!continues) {
      instructions.push(toInstruction(current.text, current.line));
      current = undefined;
    }
  }
  if (current !== undefined) {
    throw new DockerfileError(`line ${current.line}: the file ends inside a continued instruction`);
  }

  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === "FROM") {
      const tokens = instruction.args.split(/\s+/).filter((token) => !token.startsWith("--"));
      if (!(tokens.length === 1 || (tokens.length === 3 && tokens[1]?.toUpperCase() === "AS"))) {
        throw new DockerfileError(
          `line ${instruction.line}: FROM ${instruction.args} is not "image [AS name]"`,
        );
      }
      stages.push({
        index: stages.length,
        name: tokens[2],
        from: substitute(tokens[0] as string, globalArgs, instruction.line),
        instructions: [],
      });
      continue;
    }
    const stage = stages.at(-1);
    if (stage === undefined) {
      if (instruction.keyword !== "ARG") {
        throw new DockerfileError(`line ${instruction.line}: only ARG may come before the first FROM`);
      }
      for (const [name, value] of parseArg(instruction)) {
        if (value !== undefined) {
          globalArgs.set(name, value);
        }
      }
      continue;
    }
    stage.instructions.push(instruction);
  }
  return { directives, globalArgs, stages };
}

function toInstruction(text: string, line: number): Instruction {
  const match = /^(\S+)\s*(.*)$/s.exec(text);
  const keyword = (match?.[1] ?? "").toUpperCase();
  if (!KEYWORDS.has(keyword)) {
    throw new DockerfileError(`line ${line}: unknown instruction ${match?.[1]}`);
  }
  const args = (match?.[2] ?? "").trim();
  if (/<<-?["']?[A-Za-z_]/.test(args) && (keyword === "RUN" || keyword === "COPY" || keyword === "ADD")) {
    throw new DockerfileError(`line ${line}: heredocs are not supported by these checks`);
  }
  return { keyword, args, line };
}

/** `ARG NAME[=default] …`: the default is undefined when none is given. */
function parseArg(instruction: Instruction): [string, string | undefined][] {
  return splitWords(instruction.args, instruction.line).map((word) => {
    const eq = word.indexOf("=");
    return eq < 0 ? [word, undefined] : [word.slice(0, eq), word.slice(eq + 1)];
  });
}

/** `$NAME` and `${NAME}` from `vars`; an unknown name is an error (a check must not read an empty string). */
export function substitute(value: string, vars: ReadonlyMap<string, string>, line: number): string {
  return value.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_, braced, bare) => {
    const name = (braced ?? bare) as string;
    const found = vars.get(name);
    if (found === undefined) {
      throw new DockerfileError(`line ${line}: $${name} has no value`);
    }
    return found;
  });
}

/**
 * Shell-like words: whitespace separates, double and single quotes group, a backslash escapes the next character
 * (outside single quotes). Used for ENV, LABEL and ARG, whose values Docker unquotes this way.
 */
export function splitWords(text: string, line: number): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quote !== undefined) {
      if (c === quote) {
        quote = undefined;
      } else if (c === "\\" && quote === '"' && i + 1 < text.length) {
        word += text[++i];
      } else {
        word += c;
      }
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) {
        words.push(word);
      }
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote !== undefined) {
    throw new DockerfileError(`line ${line}: unterminated ${quote}`);
  }
  if (inWord) {
    words.push(word);
  }
  return words;
}

/** `KEY=value …` pairs (ENV, LABEL); the legacy `ENV KEY value` form too. */
export function parsePairs(instruction: Instruction): [string, string][] {
  const words = splitWords(instruction.args, instruction.line);
  if (words.length >= 1 && !(words[0] as string).includes("=")) {
    const rest = instruction.args.slice(
      instruction.args.indexOf(words[0] as string) + (words[0] as string).length,
    );
    return [[words[0] as string, rest.trim()]];
  }
  return words.map((word) => {
    const eq = word.indexOf("=");
    if (eq <= 0) {
      throw new DockerfileError(`line ${instruction.line}: ${word} is not KEY=value`);
    }
    return [word.slice(0, eq), word.slice(eq + 1)];
  });
}

/** The exec (JSON array) form of RUN, CMD, ENTRYPOINT, VOLUME; undefined for the shell form. */
export function execForm(instruction: Instruction): string[] | undefined {
  if (!instruction.args.startsWith("[")) {
    return undefined;
  }
  const parsed: unknown = JSON.parse(instruction.args);
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === "string")) {
    throw new DockerfileError(`line ${instruction.line}: ${instruction.args} is not a JSON array of strings`);
  }
  return parsed as string[];
}

export interface CopyInstruction {
  readonly line: number;
  /** --from: a stage name (or index); undefined for the build context. */
  readonly from: string | undefined;
  readonly chown: string | undefined;
  readonly sources: string[];
  /** Destination as written. */
  readonly dest: string;
  /** Destination made absolute against the WORKDIR in effect. */
  readonly absoluteDest: string;
}

const COPY_FLAGS = new Set(["from", "chown", "chmod", "link", "parents", "exclude"]);

function parseCopy(instruction: Instruction, workdir: string): CopyInstruction {
  let rest = instruction.args;
  const flags = new Map<string, string>();
  for (;;) {
    const match = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(rest);
    if (!match) {
      break;
    }
    const flag = match[1] as string;
    if (!COPY_FLAGS.has(flag)) {
      throw new DockerfileError(`line ${instruction.line}: unknown COPY flag --${flag}`);
    }
    if (flag === "parents" || flag === "exclude") {
      throw new DockerfileError(`line ${instruction.line}: COPY --${flag} is not supported by these checks`);
    }
    flags.set(flag, match[2] ?? "true");
    rest = rest.slice(match[0].length);
  }
  const words = rest.startsWith("[")
    ? (execForm({ ...instruction, args: rest }) as string[])
    : rest.split(/\s+/).filter((word) => word !== "");
  if (words.length < 2) {
    throw new DockerfileError(`line ${instruction.line}: COPY needs a source and a destination`);
  }
  const dest = words.at(-1) as string;
  return {
    line: instruction.line,
    from: flags.get("from"),
    chown: flags.get("chown"),
    sources: words.slice(0, -1),
    dest,
    absoluteDest: joinPosix(workdir, dest),
  };
}

/** POSIX join that keeps a trailing slash (it means "a directory" to COPY). */
export function joinPosix(base: string, relative: string): string {
  const joined = relative.startsWith("/") ? relative : `${base.replace(/\/$/, "")}/${relative}`;
  const trailing = relative.endsWith("/") || relative === "." || relative === "./";
  const parts: string[] = [];
  for (const part of joined.split("/")) {
    if (part === "" || part === ".") {
      continue;
    }
    if (part === "..") {
      parts.pop();
    } else {
      parts.push(part);
    }
  }
  const path = `/${parts.join("/")}`;
  return trailing && path !== "/" ? `${path}/` : path;
}

/** What a stage ends up with, inheriting from the stages it is built FROM. */
export interface ResolvedStage {
  readonly name: string;
  /** The external image at the bottom of the FROM chain. */
  readonly baseImage: string;
  /** The stages from the bottom of the chain up to this one. */
  readonly chain: Stage[];
  readonly env: Record<string, string>;
  readonly labels: Record<string, string>;
  readonly workdir: string;
  readonly user: string | undefined;
  readonly entrypoint: Instruction | undefined;
  readonly cmd: Instruction | undefined;
  readonly exposed: string[];
  readonly volumes: string[];
  /** Every COPY of the chain, in order, with its destination resolved against the WORKDIR of the time. */
  readonly copies: CopyInstruction[];
  /** Every RUN of the chain, with the WORKDIR it runs in. */
  readonly runs: { instruction: Instruction; workdir: string }[];
}

export function findStage(file: Dockerfile, name: string): Stage {
  const stage = file.stages.find((candidate) => candidate.name === name);
  if (stage === undefined) {
    throw new DockerfileError(`no stage named ${name}`);
  }
  return stage;
}

export function resolveStage(file: Dockerfile, name: string): ResolvedStage {
  const chain: Stage[] = [];
  let stage: Stage | undefined = findStage(file, name);
  while (stage !== undefined) {
    chain.unshift(stage);
    const from: string = stage.from;
    const parent: Stage | undefined = file.stages.find(
      (candidate) => candidate.name === from && candidate.index < (stage as Stage).index,
    );
    stage = parent;
  }
  const env: Record<string, string> = {};
  const labels: Record<string, string> = {};
  const exposed: string[] = [];
  const volumes: string[] = [];
  const copies: CopyInstruction[] = [];
  const runs: { instruction: Instruction; workdir: string }[] = [];
  let workdir = "/";
  let user: string | undefined;
  let entrypoint: Instruction | undefined;
  let cmd: Instruction | undefined;
  for (const link of chain) {
    // ARGs are per stage: a global one is visible only when the stage declares it again (ARG NAME).
    const args = new Map<string, string>();
    const vars = () => new Map([...args, ...Object.entries(env)]);
    for (const instruction of link.instructions) {
      switch (instruction.keyword) {
        case "ARG":
          for (const [key, value] of parseArg(instruction)) {
            const known = value ?? file.globalArgs.get(key);
            if (known !== undefined) {
              args.set(key, known);
            }
          }
          break;
        case "ENV":
          for (const [key, value] of parsePairs(instruction)) {
            env[key] = substitute(value, vars(), instruction.line);
          }
          break;
        case "LABEL":
          for (const [key, value] of parsePairs(instruction)) {
            labels[key] = substitute(value, vars(), instruction.line);
          }
          break;
        case "WORKDIR":
          workdir =
            joinPosix(workdir, substitute(instruction.args, vars(), instruction.line)).replace(/\/$/, "") ||
            "/";
          break;
        case "USER":
          user = instruction.args;
          break;
        case "ENTRYPOINT":
          entrypoint = instruction;
          cmd = undefined; // setting ENTRYPOINT resets an inherited CMD
          break;
        case "CMD":
          cmd = instruction;
          break;
        case "EXPOSE":
          exposed.push(...instruction.args.split(/\s+/));
          break;
        case "VOLUME":
          volumes.push(...(execForm(instruction) ?? instruction.args.split(/\s+/)));
          break;
        case "COPY":
        case "ADD":
          copies.push(parseCopy(instruction, workdir));
          break;
        case "RUN":
          runs.push({ instruction, workdir });
          break;
        default:
          break;
      }
    }
  }
  const bottom = chain[0] as Stage;
  return {
    name,
    baseImage: bottom.from,
    chain,
    env,
    labels,
    workdir,
    user,
    entrypoint,
    cmd,
    exposed,
    volumes,
    copies,
    runs,
  };
}

/** A `.dockerignore`: which context paths the builder never sees. */
export interface DockerIgnore {
  /** True when `relativePath` (slash-separated, relative to the context) is left out of the context. */
  excludes(relativePath: string): boolean;
}

interface IgnorePattern {
  readonly exclusion: boolean;
  readonly regex: RegExp;
}

/**
 * moby/patternmatcher semantics, as BuildKit applies them: lines are trimmed, `#` lines are comments, a leading
 * `!` re-includes, leading and trailing slashes are dropped (paths are cleaned), `*` and `?` do not cross `/`, `**`
 * spans any number of directories; a pattern that matches a parent directory matches everything inside it; the
 * last pattern that matches decides.
 */
export function parseDockerIgnore(text: string): DockerIgnore {
  const patterns: IgnorePattern[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === "" || line.startsWith("#")) {
      continue;
    }
    const exclusion = line.startsWith("!");
    if (exclusion) {
      line = line.slice(1).trim();
    }
    const cleaned = joinPosix("/", line).replace(/^\//, "").replace(/\/$/, "");
    if (cleaned === "") {
      continue;
    }
    patterns.push({ exclusion, regex: patternRegex(cleaned) });
  }
  return {
    excludes(relativePath: string) {
      const cleaned = joinPosix("/", relativePath).replace(/^\//, "").replace(/\/$/, "");
      const parts = cleaned.split("/");
      const candidates = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
      let excluded = false;
      for (const pattern of patterns) {
        if (candidates.some((candidate) => pattern.regex.test(candidate))) {
          excluded = !pattern.exclusion;
        }
      }
      return excluded;
    },
  };
}

function patternRegex(pattern: string): RegExp {
  let regex = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === "*") {
      if (pattern[i + 1] === "*") {
        i++;
        if (pattern[i + 1] === "/") {
          i++;
          regex += "(?:.*/)?";
        } else {
          regex += ".*";
        }
      } else {
        regex += "[^/]*";
      }
    } else if (c === "?") {
      regex += "[^/]";
    } else if (c === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) {
        throw new DockerfileError(`.dockerignore: unterminated [ in ${pattern}`);
      }
      const body = pattern.slice(i + 1, end).replace(/^[!^]/, "^");
      regex += `[${body.replace(/\\/g, "\\\\")}]`;
      i = end;
    } else if (c === "\\" && i + 1 < pattern.length) {
      regex += `\\${pattern[++i]}`;
    } else {
      regex += c.replace(/[.+^${}()|\\/]/g, "\\$&");
    }
  }
  return new RegExp(`^${regex}$`);
}

import { ConfigError } from "./config.js";

/**
 * The common start of every service's main.ts: `--help` prints what the service is and its settings; a
 * ConfigError ends the process with one readable line and exit code 2.
 */
export function readConfigOrExit<C>(name: string, about: string, help: () => string, read: () => C): C {
  if (process.argv.includes("--help")) {
    console.log(`${name}: ${about}\n\n${help()}`);
    process.exit(0);
  }
  try {
    return read();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`${name}: ${error.message} (see --help)`);
      process.exit(2);
    }
    throw error;
  }
}

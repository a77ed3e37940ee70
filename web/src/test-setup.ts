import "@testing-library/jest-dom/vitest";
import { cleanup, configure } from "@solidjs/testing-library";
import { afterEach } from "vitest";

// Vitest runs without globals, so @solidjs/testing-library cannot register its own cleanup: unmount after each test.
afterEach(() => cleanup());

// `findBy…` waits up to 3 s (not 1 s): `npm test` runs these next to the node project's real processes on 2 cores.
configure({ asyncUtilTimeout: 3000 });

import "@testing-library/jest-dom/vitest";
import { cleanup } from "@solidjs/testing-library";
import { afterEach } from "vitest";

// Vitest runs without globals, so @solidjs/testing-library cannot register its own cleanup: unmount after each test.
afterEach(() => cleanup());

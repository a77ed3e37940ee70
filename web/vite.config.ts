import { fileURLToPath } from "node:url";
import solid from "vite-plugin-solid";
import { defineConfig } from "vitest/config";

// The web app's build (`npm run build -w web` → web/dist, served by app-service) and its component tests (the "web"
// project of the root vitest config: jsdom, @solidjs/testing-library, an in-memory Connect transport).
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  plugins: [solid()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Hashed file names under assets/: app-service serves them as immutable.
    assetsDir: "assets",
    target: "es2022",
    sourcemap: false,
  },
  server: {
    // `npm run dev -w web`: the API is app-service on 8080 (start the mesh with `npm start`). The proxy presents
    // the calls as app-service's own (Host and Origin of 127.0.0.1:8080): app-service refuses other hosts and
    // other origins (README "The web edge"), and to the browser the dev server is the page's own origin.
    proxy: {
      "/shadowmesh.": {
        target: "http://127.0.0.1:8080",
        changeOrigin: true,
        headers: { origin: "http://127.0.0.1:8080" },
      },
    },
  },
  test: {
    name: "web",
    environment: "jsdom",
    include: ["src/**/*.test.tsx"],
    setupFiles: ["./src/test-setup.ts"],
    // Above the 4-5 s the tests give vi.waitFor, so a slow wait fails with its own message, not the test's timeout.
    testTimeout: 15_000,
    server: { deps: { inline: [/solid-js/, /@solidjs/] } },
  },
});

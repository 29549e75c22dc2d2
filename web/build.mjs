// Bundles the UI into one JS and one CSS file plus index.html, into $PRESSLUFT_WEB_OUT
// (server/build.rs sets it to a directory under Cargo's OUT_DIR) or dist/.
import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import * as esbuild from "esbuild";

const out = process.env.PRESSLUFT_WEB_OUT ?? "dist";
await mkdir(join(out, "assets"), { recursive: true });
await esbuild.build({
  entryPoints: { app: "src/main.tsx" },
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: false,
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: join(out, "assets"),
  logLevel: "warning",
});
await copyFile("src/style.css", join(out, "assets", "app.css"));
await copyFile("index.html", join(out, "index.html"));

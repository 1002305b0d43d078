// Built into api/static/dashboard/ (committed: serving it needs no network), served by
// `tradetape serve` at / with its assets under /dashboard/. Rebuild: scripts/build_dashboard.
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  base: "/dashboard/",
  build: {
    outDir: "../static/dashboard",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
});

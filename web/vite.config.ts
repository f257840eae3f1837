/**
 * The console (index.html) and GraphiQL (graphiql.html), built to dist/ for the gateway to serve at its root.
 * `npm run dev -w web` / `npm run preview -w web` proxy the API to a running platform (`npm start`): /graphql
 * (HTTP and WebSocket) to the gateway and /oauth/token to the token endpoint, so the console talks to its own
 * origin as it does when the gateway serves it. JARVIS_GATEWAY_URL and JARVIS_TOKEN_URL point them elsewhere.
 */
import { resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig, type ProxyOptions } from 'vite';

const gateway = process.env.JARVIS_GATEWAY_URL ?? 'http://localhost:4000';
const tokenEndpoint = process.env.JARVIS_TOKEN_URL ?? 'http://localhost:4001';

const proxy: Record<string, ProxyOptions> = {
  '/graphql': { target: gateway, ws: true, changeOrigin: true },
  '/oauth/token': { target: tokenEndpoint, changeOrigin: true },
};

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 2048,
    rolldownOptions: {
      input: {
        console: resolve(import.meta.dirname, 'index.html'),
        graphiql: resolve(import.meta.dirname, 'graphiql.html'),
      },
      // GraphiQL's compiled React ships "use no memo" directives, harmless once bundled.
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
    },
  },
  server: { port: 5173, proxy },
  preview: { port: 5173, proxy },
});

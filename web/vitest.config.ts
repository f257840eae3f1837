/**
 * `npx vitest run` in web/ (and `npm test` through scripts/test.ts): the console's component tests, every
 * *.test.tsx under src/, in jsdom with React's Vite plugin as in the build (vite.config.ts).
 */
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.tsx'],
    setupFiles: ['src/test/setup.ts'],
    // Each test puts a fake fetch and WebSocket in place of the globals; they are put back after it.
    unstubGlobals: true,
    restoreMocks: true,
  },
});

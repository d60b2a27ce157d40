// Bundles src/main.ts into dist/app.js and copies public/ into dist/.
import { build } from 'esbuild';
import { cpSync, mkdirSync, rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
mkdirSync('dist', { recursive: true });
await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'iife',
  target: ['es2020'],
  outfile: 'dist/app.js',
  logLevel: 'info',
});
cpSync('public', 'dist', { recursive: true });

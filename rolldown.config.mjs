// The command line as bin/authkit.js runs it: tsc's output (dist/) bundled into dist/bundle/, so
// that a command loads a few files instead of dozens of ES modules. Start-up is measured (issue
// 16: snell-auth's spawn to its first trial), and on Node 20 each module costs its resolution,
// read, compilation and link. Packages stay outside (node_modules, as they are), and nothing is
// minified: a stack trace with AUTHKIT_DEBUG=1 still names readable functions.
//
// dist/bundle/ is as deep as dist/shared/ or dist/demo/: the paths the code resolves from its
// own place (../../package.json, ../../fixtures/) mean the same file from either.
const external = (id) => !id.startsWith('.') && !id.startsWith('/');

export default [
  {
    // One entry per thing bin/authkit.js loads; each command's module stays its own chunk, loaded
    // when that command runs (cli/main.ts).
    input: { main: 'dist/cli/main.js', prestart: 'dist/cli/prestart.js' },
    external,
    platform: 'node',
    output: { dir: 'dist/bundle', format: 'esm', cleanDir: true, entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js' },
  },
  {
    // The scan worker as one CommonJS file: a worker thread boots ~25 ms sooner without the ES
    // module loader, and snell-auth waits for it (snell/scan/workers.ts).
    input: { 'scan-worker': 'dist/snell/scan/worker.js' },
    external,
    platform: 'node',
    output: { dir: 'dist/bundle', format: 'cjs', entryFileNames: '[name].cjs' },
  },
];

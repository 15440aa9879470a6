#!/usr/bin/env node
// Bundles the built exporter (dist/, from `npm run build`) into self-contained JavaScript that
// runs with a plain `node` and no node_modules: the runner's bundled Node in a runner image.
//
//   node scripts/bundle.mjs [--outdir DIR]      (default dist/bundle)
//
// Two files, side by side: cli.js (the CLI, the endpoint, the supervisor) and worker.js (the
// collector worker). The supervisor loads its worker with new URL('./worker.js', import.meta.url);
// bundled into cli.js, that URL is DIR/worker.js.

import { build } from 'esbuild'
import { existsSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

function parseArgs(argv) {
  let outdir = join(root, 'dist', 'bundle')
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--outdir' && argv[i + 1] !== undefined) outdir = resolve(argv[++i])
    else if (arg.startsWith('--outdir=')) outdir = resolve(arg.slice('--outdir='.length))
    else throw new Error(`unknown argument ${JSON.stringify(arg)} (usage: node scripts/bundle.mjs [--outdir DIR])`)
  }
  return { outdir }
}

const ENTRIES = { cli: 'dist/cli.js', worker: 'dist/collector/worker.js' }
const BUILTINS = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`)])

async function main() {
  const { outdir } = parseArgs(process.argv.slice(2))
  for (const entry of Object.values(ENTRIES)) {
    if (!existsSync(join(root, entry))) throw new Error(`${entry} is missing: run \`npm run build\` first`)
  }
  const result = await build({
    absWorkingDir: root,
    entryPoints: ENTRIES,
    outdir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    metafile: true,
    logLevel: 'warning',
    // split2 is CommonJS and calls require('stream'); an ESM bundle has no `require` of its own.
    banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
  })

  // Self-contained means: nothing left to import but Node's own modules.
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    const foreign = output.imports.filter((item) => item.external && !BUILTINS.has(item.path)).map((item) => item.path)
    if (foreign.length > 0) throw new Error(`${file} still imports ${foreign.join(', ')}`)
    process.stdout.write(`${resolve(root, file)}  ${(output.bytes / 1024).toFixed(1)} KiB\n`)
  }
}

main().catch((error) => {
  process.stderr.write(`bundle: ${error.message}\n`)
  process.exitCode = 1
})

import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import * as fs from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { transformSync } from 'esbuild'
import t from 'tap'
import { readProcessStats, type ProcessStats } from '../src/collector/process-stats.js'

/** The module compiled to plain JS, for a worker thread or a child process (tap's TS loader is not there). */
function compiledModule(dir: string): string {
  const source = fs.readFileSync(new URL('../src/collector/process-stats.ts', import.meta.url), 'utf8')
  const file = join(dir, 'process-stats.mjs')
  fs.writeFileSync(file, transformSync(source, { loader: 'ts', format: 'esm' }).code)
  return file
}

t.test('CPU time in seconds, the whole process', async (t) => {
  const before = process.cpuUsage()
  const stats = readProcessStats()
  const after = process.cpuUsage()
  t.ok(stats.cpuSecondsTotal >= (before.user + before.system) / 1e6, 'user + system, in seconds')
  t.ok(stats.cpuSecondsTotal <= (after.user + after.system) / 1e6)
  t.ok(stats.cpuSecondsTotal > 0.01, 'loading tap alone takes more than 10 ms of CPU')
})

t.test('resident memory matches what the kernel reports', async (t) => {
  const stats = readProcessStats()
  const vmRssKiB = Number(/^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1])
  const ratio = stats.residentMemoryBytes / (vmRssKiB * 1024)
  t.ok(ratio > 0.8 && ratio < 1.25, `rss ${stats.residentMemoryBytes} B vs VmRSS ${vmRssKiB} KiB`)
})

t.test('start time is the process start, in whole epoch seconds, and stays put', async (t) => {
  const first = readProcessStats().startTimeSeconds
  t.ok(Number.isInteger(first))
  t.ok(Math.abs(first - (Date.now() / 1000 - process.uptime())) <= 1)
  // Burn a little wall time so a value computed per call would drift.
  const until = Date.now() + 20
  while (Date.now() < until);
  t.equal(readProcessStats().startTimeSeconds, first)
})

t.test('open file descriptors are counted from /proc/self/fd', async (t) => {
  const before = readProcessStats().openFds!
  t.ok(before >= 3, `${before} open, stdio included`)
  const fds = [0, 1, 2, 3, 4].map(() => fs.openSync('/dev/null', 'r'))
  t.teardown(() => fds.forEach((fd) => fs.closeSync(fd)))
  t.equal(readProcessStats().openFds, before + 5, 'five more, and not the one used to list them')
})

t.test('max file descriptors is the soft limit', async (t) => {
  const soft = spawnSync('sh', ['-c', 'ulimit -S -n'], { encoding: 'utf8', timeout: 10_000 }).stdout.trim()
  t.equal(String(readProcessStats().maxFds), soft, 'the limit a child shell inherits')

  const module = compiledModule(t.testdir({}))
  const script = `import(${JSON.stringify(module)}).then((m) => console.log(JSON.stringify(m.readProcessStats())))`
  // Node raises its soft limit to the hard one at startup, so lower both.
  const child = spawnSync('sh', ['-c', `ulimit -n 321 && exec "$0" --input-type=module -e "$1"`, process.execPath, script], {
    encoding: 'utf8',
    timeout: 30_000,
  })
  t.equal(child.status, 0, child.stderr)
  const stats = JSON.parse(child.stdout) as ProcessStats
  t.equal(stats.maxFds, 321, 'a process started with `ulimit -n 321`')
  t.ok(stats.openFds! > 0 && stats.openFds! < 321)
})

t.test('inside a worker thread the figures are still the whole process', async (t) => {
  const dir = t.testdir({})
  const module = compiledModule(dir)
  const mainBefore = readProcessStats()
  const worker = new Worker(
    `import(${JSON.stringify(module)}).then((m) => require('node:worker_threads').parentPort.postMessage(m.readProcessStats()))`,
    { eval: true },
  )
  t.teardown(() => worker.terminate())
  const [inWorker] = (await once(worker, 'message')) as [ProcessStats]
  const mainAfter = readProcessStats()
  t.ok(inWorker.cpuSecondsTotal >= mainBefore.cpuSecondsTotal, 'CPU includes what the main thread used before the worker existed')
  t.ok(inWorker.residentMemoryBytes >= mainBefore.residentMemoryBytes * 0.8, 'RSS is the process RSS')
  t.ok(Math.abs(inWorker.startTimeSeconds - mainAfter.startTimeSeconds) <= 1, 'the process start, not the worker start')
  t.equal(inWorker.maxFds, mainAfter.maxFds)
  t.ok(inWorker.openFds! >= mainBefore.openFds! - 2 && inWorker.openFds! <= mainAfter.openFds! + 10, 'the process fd table')
})

t.test('without /proc, the fd figures are left out and the rest still works', async (t) => {
  const noProc = (path: fs.PathLike): never => {
    throw Object.assign(new Error(`ENOENT: no such file or directory, open '${String(path)}'`), { code: 'ENOENT' })
  }
  const { readProcessStats: read } = await t.mockImport<typeof import('../src/collector/process-stats.js')>(
    '../src/collector/process-stats.js',
    { 'node:fs': { ...fs, readdirSync: noProc, readFileSync: noProc } },
  )
  const stats = read()
  t.equal(stats.openFds, undefined)
  t.equal(stats.maxFds, undefined)
  t.ok(stats.cpuSecondsTotal > 0 && stats.residentMemoryBytes > 0 && stats.startTimeSeconds > 0)
})

t.test('out of descriptors, or an unlimited or unknown limit: left out', async (t) => {
  const limitsWith = (line: string) =>
    t.mockImport<typeof import('../src/collector/process-stats.js')>('../src/collector/process-stats.js', {
      'node:fs': {
        ...fs,
        readdirSync: () => {
          throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' })
        },
        readFileSync: () => `Limit                     Soft Limit           Hard Limit           Units     \n${line}`,
      },
    })
  const unlimited = await limitsWith('Max open files            unlimited            unlimited            files     \n')
  t.same([unlimited.readProcessStats().openFds, unlimited.readProcessStats().maxFds], [undefined, undefined])
  const missing = await limitsWith('Max processes             1024                 1024                 processes \n')
  t.equal(missing.readProcessStats().maxFds, undefined)
  const numeric = await limitsWith('Max open files            4096                 8192                 files     \n')
  t.equal(numeric.readProcessStats().maxFds, 4096, 'the soft limit, not the hard one')
})

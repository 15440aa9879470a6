// The metrics directory full: the last good file keeps being served byte for byte, no temp file
// is left behind, the error is counted (github_runner_collector_errors_total) and logged once,
// and the next collection after space comes back publishes again. On a real 64 KiB tmpfs where
// this machine can mount one (root with CAP_SYS_ADMIN), and with ENOSPC injected everywhere.
import { appendFileSync, readdirSync, unlinkSync, watch, writeFileSync } from 'node:fs'
import * as fs from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Collector } from '../src/collector/collect.js'
import { startEndpoint } from './fixtures/http-client.js'
import { incompleteBody, scrape } from './fixtures/reliability-body.js'
import { waitForStderrLine } from './fixtures/exporter.js'
import { startCli, type Cli } from './fixtures/exporter.js'
import { fillUp, mountTmpfs, tmpfsUnavailable } from './fixtures/reliability-tmpfs.js'
import { parseSamples, runnerLabels } from './fixtures/samples.js'

const SUCCESS = `github_runner_jobs_total{${runnerLabels('full')},status="success"}`
const ERRORS = 'github_runner_collector_errors_total'
const job = (i: number): string => `${1700000000 + i}|success|5|j${i}\n`
const tempFiles = (dir: string): string[] => readdirSync(dir).filter((name) => name.endsWith('.tmp'))

const noTmpfs = tmpfsUnavailable()

interface FullDisk {
  /** Where the metrics file goes. */
  dir: string
  fill(): void
  free(): void
}

/**
 * One good collection, then the disk fills: three collections fail while the endpoint serves the
 * last good file, then space comes back and the next collection publishes the jobs it missed.
 */
async function lastGoodFileIsServed(t: Test, disk: FullDisk, CollectorClass: typeof Collector): Promise<void> {
  const jobsLog = join(t.testdir({}), 'jobs.log')
  const metricsFile = join(disk.dir, 'metrics.prom')
  const logs: string[] = []
  const collector = new CollectorClass({ jobsLog, metricsFile, runnerName: 'full', runnerType: 'standard', startedAtMs: Date.now(), log: (m) => logs.push(m) })
  t.teardown(() => collector.close())
  const { port } = await startEndpoint(t, { metricsFile })
  writeFileSync(jobsLog, job(0))
  t.same(await collector.collectOnce(), { ok: true, written: true })
  const good = await scrape(port)
  t.equal(good.status, 200)

  disk.fill()
  for (let i = 1; i <= 3; i++) {
    appendFileSync(jobsLog, job(i))
    t.same(await collector.collectOnce(), { ok: false, written: false }, `full: collection ${i} fails`)
    const served = await scrape(port)
    t.equal(served.status, 200, 'still a 200')
    t.ok(served.body.equals(good.body), 'the last good file, byte for byte')
    t.same(tempFiles(disk.dir), [], 'no temp file left')
  }
  t.equal(collector.errorsTotal, 3, 'each failed collection counted')
  t.equal(logs.length, 1, 'logged once')
  t.match(logs[0], /^cannot write .*metrics\.prom \(ENOSPC\); serving the last good file, retrying next interval$/)

  disk.free()
  t.same(await collector.collectOnce(), { ok: true, written: true }, 'space is back: published again')
  const recovered = await scrape(port)
  const samples = parseSamples(recovered.body.toString())
  t.equal(samples.get(SUCCESS), 4, 'with the jobs logged while the disk was full')
  t.equal(samples.get(ERRORS), 3, 'and the errors counted meanwhile')
  t.same(tempFiles(disk.dir), [])

  disk.fill()
  await collector.collectOnce()
  t.equal(logs.length, 2, 'a disk that fills again after a recovery is logged again')
}

t.test('a real full tmpfs: the last good file is served, the error counted and logged once, then recovery', { skip: noTmpfs ?? false }, async (t) => {
  const mounted = mountTmpfs(t, '64k')
  if ('reason' in mounted) throw new Error(mounted.reason)
  const filler = join(mounted.dir, 'filler')
  await lastGoodFileIsServed(t, { dir: mounted.dir, fill: () => fillUp(filler), free: () => unlinkSync(filler) }, Collector)
})

t.test('ENOSPC injected half-way through the temp file: the same, on any machine', async (t) => {
  let full = false
  const atomicWrite = await t.mockImport<typeof import('../src/atomic-write.js')>('../src/atomic-write.js', {
    'node:fs': {
      ...fs,
      writeFileSync: (...args: Parameters<typeof fs.writeFileSync>) => {
        if (!full) return fs.writeFileSync(...args)
        // Half the bytes reach the temp file, then the disk is full.
        const [fd, data] = args
        const bytes = Buffer.from(data as string)
        fs.writeSync(fd as number, bytes, 0, bytes.length >> 1)
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
      },
    },
  })
  const { Collector: FullCollector } = await t.mockImport<typeof import('../src/collector/collect.js')>('../src/collector/collect.js', {
    '../src/atomic-write.js': atomicWrite,
  })
  const dir = t.testdir({})
  await lastGoodFileIsServed(t, { dir, fill: () => (full = true), free: () => (full = false) }, FullCollector)
})

t.test('the real CLI on a full tmpfs: serves the last good file throughout, logs once, publishes again', { skip: noTmpfs ?? false }, async (t) => {
  let cli: Cli | undefined
  const mounted = mountTmpfs(t, '64k', () => cli?.stop() ?? Promise.resolve())
  if ('reason' in mounted) throw new Error(mounted.reason)
  const { dir } = mounted
  const filler = join(dir, 'filler')
  const jobsLog = join(t.testdir({}), 'jobs.log')
  writeFileSync(jobsLog, job(0))
  cli = await startCli(t, ['--metrics-file', join(dir, 'metrics.prom'), '--jobs-log', jobsLog, '--interval', '0.3', '--runner-name', 'full'])

  // Every collection creates a temp file and then renames it (or, failing, deletes it): two
  // events per attempt. Waiting on them is waiting on the collector, not on a guess.
  const watcher = watch(dir)
  t.teardown(() => watcher.close())
  let tempEvents = 0
  let published = 0
  const waiters: Array<() => boolean> = []
  watcher.on('change', (type, name) => {
    if (type !== 'rename') return
    if (String(name).endsWith('.tmp')) tempEvents++
    if (name === 'metrics.prom') published++
    for (const waiter of [...waiters]) if (waiter()) waiters.splice(waiters.indexOf(waiter), 1)
  })
  const until = (done: () => boolean): Promise<void> =>
    new Promise((resolve) => (done() ? resolve() : waiters.push(() => (done() ? (resolve(), true) : false))))

  // Fill the disk right after a collection, with the file just served: the next collection is
  // an interval away, so none is half-way through a write while the disk fills.
  const seen = published
  await until(() => published > seen)
  const good = await scrape(cli.port)
  t.equal(incompleteBody(good.body.toString()), undefined)
  fillUp(filler)
  const failedFrom = tempEvents
  appendFileSync(jobsLog, job(1) + job(2))
  await waitForStderrLine(cli.child, /ENOSPC/)
  for (let attempt = 1; attempt <= 3; attempt++) {
    await until(() => tempEvents - failedFrom >= 2 * attempt)
    const served = await scrape(cli.port)
    t.ok(served.status === 200 && served.body.equals(good.body), `failed collection ${attempt}: the last good file is served`)
    t.same(tempFiles(dir), [], 'and its temp file is gone')
  }

  unlinkSync(filler)
  const freedAt = published
  await until(() => published > freedAt)
  const samples = parseSamples((await scrape(cli.port)).body.toString())
  t.equal(samples.get(SUCCESS), 3, 'space is back: the jobs logged meanwhile are published')
  t.ok((samples.get(ERRORS) ?? 0) >= 3, `the failed collections are counted (${samples.get(ERRORS)})`)
  const lines = cli.stderr().split('\n').filter((line) => line.includes('ENOSPC'))
  t.equal(lines.length, 1, 'logged once')
  t.match(lines[0], /^runner-metrics: cannot write .*metrics\.prom \(ENOSPC\); serving the last good file, retrying next interval$/)
  t.equal((await cli.stop()).code, 0)
})

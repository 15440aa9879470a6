// `make bench` cannot silently rot: its quick mode runs end to end here, writes a well-formed
// results file where it is told to, and leaves no process or temp dir behind. Timings are not
// asserted (the machine running the tests is not a benchmark machine); counts are.

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'

/** Processes whose command line mentions `marker` (the bench's temp dir is under it). */
function processesMentioning(marker: string): string[] {
  const found: string[] = []
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
      if (cmdline.includes(marker)) found.push(`${pid}: ${cmdline}`)
    } catch {
      // Exited while we looked.
    }
  }
  return found
}

t.test('BENCH_QUICK=1 runs every section and writes the results file it is given', async (t) => {
  // A unique dir, not t.testdir(): that path is fixed per test name, so two runs of the suite at
  // once (several engineers share this checkout) would delete each other's.
  const dir = mkdtempSync(join(tmpdir(), 'bench-quick-'))
  mkdirSync(join(dir, 'tmp'))
  const results = join(dir, 'latest.json')
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_QUICK: '1', BENCH_RESULTS: results, TMPDIR: join(dir, 'tmp') }
  // The bench measures plain processes: not the test runner's coverage loader, not a caller's overrides.
  delete env.NODE_OPTIONS
  for (const name of ['BENCH_SECONDS', 'BENCH_OVERHEAD_SECONDS', 'BENCH_RUNS', 'BENCH_CLI']) delete env[name]

  const child = spawn(process.execPath, ['bench/run.mjs'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(async () => {
    // SIGTERM lets the bench stop what it started before it exits.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
    rmSync(dir, { recursive: true, force: true })
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const [code] = (await once(child, 'exit')) as [number | null]

  // 0: every budget met; 1: a budget missed (timings are not this test's business); 2: the bench broke.
  t.ok(code === 0 || code === 1, `exit code ${code}; stderr:\n${stderr}`)
  t.match(stdout, /Scrape load: autocannon/)
  t.match(stdout, /Budgets \(a miss fails the bench\)/)

  const json = JSON.parse(readFileSync(results, 'utf8'))
  t.equal(json.version, 1)
  t.equal(json.quick, true)
  t.equal(typeof json.machine.cpuModel, 'string')
  t.ok(json.machine.cores >= 1)
  t.equal(json.machine.node, process.version)
  t.ok(json.metricsFile.bytes > 0, 'the collector rendered the served file')

  const ours = json.scrape.autocannon.ours
  t.ok(ours.responses > 0, 'ours answered')
  t.equal(ours.non2xx, 0)
  t.equal(ours.errors, 0)
  t.equal(ours.served, ours.status2xx, "ours' served count matches the client's 2xx")
  t.equal(typeof ours.latencyMs.p99, 'number')
  for (const peer of ['netcat', 'nginx', 'node:http']) {
    const ran = peer in json.scrape.autocannon
    const skipped = json.scrape.skipped.some((s: { peer: string }) => s.peer === peer)
    const failed = json.scrape.failed.some((s: { peer: string }) => s.peer === peer)
    t.ok(ran || skipped || failed, `${peer} ran or is reported as skipped/failed`)
  }
  if (json.scrape.autocannon.netcat) t.equal(json.scrape.autocannon.netcat.status2xx, 0, 'the netcat loop never completes a response')

  for (const run of [json.overhead.scraped, json.overhead.idle]) {
    t.equal(typeof run.cpuPercent, 'number')
    t.ok(run.rssPeakMB > 0)
  }
  t.equal(json.overhead.scraped.scrapes.served, json.overhead.scraped.scrapes.count)
  t.same(
    json.collector.cold.results.map((r: { lines: number }) => r.lines),
    [10_000],
  )
  t.equal(typeof json.collector.cold.results[0].peakRssMB, 'number')
  t.equal(json.collector.incremental.appendedLines, 1000)

  t.equal(json.verdicts.budgets.length, 4)
  t.equal(json.verdicts.targets.length, 6)
  for (const v of [...json.verdicts.budgets, ...json.verdicts.targets, ...json.verdicts.checks]) {
    t.equal(typeof v.name, 'string')
    t.ok(v.pass === true || v.pass === false || v.pass === null, `${v.name}: ${v.pass}`)
  }
  t.equal(json.passed, code === 0, 'the exit code follows the verdicts')

  t.same(readdirSync(join(dir, 'tmp')), [], 'temp dirs removed')
  t.same(processesMentioning(dir), [], 'every process the bench started is stopped')
})

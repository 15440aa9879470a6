import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Collector, type CollectorOptions } from '../src/collector/collect.js'
import { emptyCounts } from '../src/collector/jobs.js'
import { parseSamples, runnerLabels } from './fixtures/samples.js'

const labels = runnerLabels('r1')

function setup(t: Test, files: Record<string, string> = {}) {
  const dir = t.testdir(files)
  const logs: string[] = []
  const options: CollectorOptions = {
    jobsLog: join(dir, 'jobs.log'),
    metricsFile: join(dir, 'metrics.prom'),
    runnerName: 'r1',
    runnerType: 'standard',
    startedAtMs: Date.now() - 5000,
    log: (message) => logs.push(message),
  }
  const read = () => parseSamples(readFileSync(options.metricsFile, 'utf8'))
  return { dir, logs, options, read }
}

t.test('a collection turns the job log into the metrics file', async (t) => {
  const { options, read, logs } = setup(t, {
    'jobs.log': '1700000000|started|0|a\n1700000100|success|100|a\n1700000200|failed|3|b\nnot a line\n',
  })
  const collector = new Collector(options)
  t.same(await collector.collectOnce(), { ok: true, written: true })
  const samples = read()
  t.equal(samples.get(`github_runner_jobs_total{${labels},status="success"}`), 1)
  t.equal(samples.get(`github_runner_jobs_total{${labels},status="failure"}`), 1)
  t.equal(samples.get(`github_runner_jobs_total{${labels},status="cancelled"}`), 0)
  t.equal(samples.get(`github_runner_job_duration_seconds_count{${labels}}`), 2)
  t.equal(samples.get(`github_runner_job_duration_seconds_sum{${labels}}`), 103)
  t.equal(samples.get('github_runner_jobs_log_invalid_lines_total'), 1)
  t.equal(samples.get('github_runner_collector_errors_total'), 0)
  const uptime = samples.get(`github_runner_uptime_seconds{${labels}}`) as number
  t.ok(uptime >= 5 && uptime < 60, `uptime counts from the exporter's start (${uptime})`)
  const lastSuccess = samples.get('github_runner_collector_last_success_timestamp_seconds') as number
  t.ok(Math.abs(lastSuccess - Date.now() / 1000) < 60)
  t.ok(samples.has('process_resident_memory_bytes'))
  t.same(logs, [])
  t.same(readdirSync(join(options.metricsFile, '..')).sort(), ['jobs.log', 'metrics.prom'])

  appendFileSync(options.jobsLog, '1700000300|success|7|c\n')
  t.same(await collector.collectOnce(), { ok: true, written: true })
  t.equal(read().get(`github_runner_jobs_total{${labels},status="success"}`), 2, 'the next collection adds what was appended')
})

t.test('a missing job log means zero jobs, not an error', async (t) => {
  const { options, read, logs } = setup(t)
  t.same(await new Collector(options).collectOnce(), { ok: true, written: true })
  t.equal(read().get(`github_runner_jobs_total{${labels},status="success"}`), 0)
  t.equal(read().get('github_runner_collector_errors_total'), 0)
  t.same(logs, [])
})

t.test('an unreadable job log is counted and logged once; the file is still written with the counts kept', async (t) => {
  const { options, read, logs } = setup(t, { 'jobs.log': '1700000000|success|1|a\n' })
  const collector = new Collector(options)
  await collector.collectOnce()
  const firstSuccess = read().get('github_runner_collector_last_success_timestamp_seconds')
  rmSync(options.jobsLog)
  mkdirSync(options.jobsLog)
  t.same(await collector.collectOnce(), { ok: false, written: true })
  t.same(await collector.collectOnce(), { ok: false, written: true })
  const samples = read()
  t.equal(samples.get('github_runner_collector_errors_total'), 2)
  t.equal(samples.get(`github_runner_jobs_total{${labels},status="success"}`), 1, 'counts kept')
  t.equal(samples.get('github_runner_collector_last_success_timestamp_seconds'), firstSuccess, 'not a success')
  t.equal(logs.length, 1, 'logged once')
  t.match(logs[0], /cannot read job log .*jobs\.log \(EISDIR\); counts are kept/)

  rmSync(options.jobsLog, { recursive: true })
  writeFileSync(options.jobsLog, '1700000000|success|1|a\n1700000001|success|1|b\n')
  t.same(await collector.collectOnce(), { ok: true, written: true })
  t.equal(read().get(`github_runner_jobs_total{${labels},status="success"}`), 3, 'recovers; a new file is read from its start on top of the counts made')
  rmSync(options.jobsLog)
  mkdirSync(options.jobsLog)
  await collector.collectOnce()
  t.equal(logs.length, 2, 'a problem that comes back after a recovery is logged again')
})

t.test('a failing write keeps the last good file, counts the error and logs once per kind', async (t) => {
  const { options, read, logs, dir } = setup(t, { 'jobs.log': '1700000000|success|1|a\n' })
  const collector = new Collector(options)
  await collector.collectOnce()
  const good = readFileSync(options.metricsFile, 'utf8')
  const other = { ...options, metricsFile: join(dir, 'missing-dir', 'metrics.prom') }
  const failing = new Collector(other)
  t.same(await failing.collectOnce(), { ok: false, written: false })
  t.same(await failing.collectOnce(), { ok: false, written: false })
  t.equal(failing.errorsTotal, 2)
  t.equal(logs.length, 1)
  t.match(logs[0], /cannot write .*missing-dir\/metrics\.prom \(ENOENT\); serving the last good file, retrying next interval/)
  t.equal(readFileSync(options.metricsFile, 'utf8'), good)

  mkdirSync(join(dir, 'missing-dir'))
  t.same(await failing.collectOnce(), { ok: true, written: true })
  t.equal(parseSamples(readFileSync(other.metricsFile, 'utf8')).get('github_runner_collector_errors_total'), 2, 'the errors show once a write succeeds')
  rmSync(join(dir, 'missing-dir'), { recursive: true })
  await failing.collectOnce()
  t.equal(logs.length, 2, 'logged again after it had recovered')
  t.same(readdirSync(dir).sort(), ['jobs.log', 'metrics.prom'], 'no temp file left anywhere')
  t.ok(read())
})

t.test('an EBUSY rename (bind-mounted file) is written in place with one warning', async (t) => {
  const { options, logs } = setup(t)
  const { Collector: BusyCollector } = await t.mockImport<typeof import('../src/collector/collect.js')>('../src/collector/collect.js', {
    '../src/atomic-write.js': { writeFileAtomic: async () => ({ inPlace: true }) },
  })
  const collector = new BusyCollector(options)
  t.same(await collector.collectOnce(), { ok: true, written: true })
  await collector.collectOnce()
  t.equal(logs.length, 1)
  t.match(logs[0], /warning: cannot rename over .* \(EBUSY: a bind-mounted file\?\); rewriting it in place/)
})

t.test('output that fails its self-check is an error, not a file', async (t) => {
  const { options, logs } = setup(t)
  const exposition = await import('../src/collector/exposition.js')
  const { Collector: CheckedCollector } = await t.mockImport<typeof import('../src/collector/collect.js')>('../src/collector/collect.js', {
    '../src/collector/exposition.js': { ...exposition, checkExposition: () => ['duplicate series x'] },
  })
  const collector = new CheckedCollector(options)
  t.same(await collector.collectOnce(), { ok: false, written: false })
  t.equal(collector.errorsTotal, 1)
  t.same(readdirSync(join(options.metricsFile, '..')), [])
  t.match(logs[0], /rendered metrics failed their self-check, not published: duplicate series x/)
})

t.test('uptime and timestamps come from the injected clock', async (t) => {
  const { options, read } = setup(t)
  let now = 1_700_000_000_000
  const collector = new Collector({ ...options, startedAtMs: now - 90_000, now: () => (now += 250) })
  await collector.collectOnce()
  const samples = read()
  t.equal(samples.get(`github_runner_uptime_seconds{${labels}}`), 90.25)
  t.equal(samples.get('github_runner_collector_last_success_timestamp_seconds'), 1_700_000_000.25)
  t.equal(samples.get('github_runner_collector_duration_seconds'), 0.25)
})

t.test('errors without a system code are reported as unknown', async (t) => {
  const { options, logs } = setup(t)
  const { Collector: OddCollector } = await t.mockImport<typeof import('../src/collector/collect.js')>('../src/collector/collect.js', {
    '../src/atomic-write.js': {
      writeFileAtomic: async () => {
        throw new Error('odd write failure')
      },
    },
    '../src/collector/job-log.js': {
      JobLogReader: class {
        counts = emptyCounts()
        async readNew() {
          throw new Error('odd read failure')
        }
      },
    },
  })
  t.same(await new OddCollector(options).collectOnce(), { ok: false, written: false })
  t.match(logs, [/cannot read job log .* \(unknown\)/, /cannot write .* \(unknown\)/])
})

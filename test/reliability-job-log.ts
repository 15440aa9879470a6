// The job log at its worst, through whole collections (read, render, write the metrics file):
// a 100 MiB line, binary garbage, 100,000 lines at once, deletion, a directory in its place,
// rotation. After every collection the counters in the metrics file are exact and never lower
// than in the one before; invalid lines are counted; memory stays bounded.
import { once } from 'node:events'
import { appendFileSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MessageChannel } from 'node:worker_threads'
import t, { type Test } from 'tap'
import { Collector } from '../src/collector/collect.js'
import { DURATION_BUCKETS, FINISHED_STATUSES } from '../src/collector/jobs.js'
import { runCollectorLoop } from '../src/collector/worker-loop.js'
import { decreasedCounters, incompleteBody, logCounters } from './fixtures/reliability-body.js'
import { normalizeSeries, parseSamples, runnerLabels } from './fixtures/samples.js'

const labels = runnerLabels('rel')
const series = (status: string): string => `github_runner_jobs_total{${labels},status="${status}"}`
const INVALID = 'github_runner_jobs_log_invalid_lines_total'
const ERRORS = 'github_runner_collector_errors_total'

/** A Collector on a fresh directory, and `collect()`: one collection, then the metrics file's samples. */
function setup(t: Test) {
  const dir = t.testdir({})
  const jobsLog = join(dir, 'jobs.log')
  const metricsFile = join(dir, 'metrics.prom')
  const logs: string[] = []
  const collector = new Collector({ jobsLog, metricsFile, runnerName: 'rel', runnerType: 'standard', startedAtMs: Date.now(), log: (m) => logs.push(m) })
  t.teardown(() => collector.close())
  let previous = new Map<string, number>()
  async function collect(): Promise<Map<string, number>> {
    await collector.collectOnce()
    const body = readFileSync(metricsFile, 'utf8')
    t.equal(incompleteBody(body), undefined, 'a whole metrics file')
    const now = logCounters(body)
    t.same(decreasedCounters(previous, now), [], 'no counter went down')
    previous = now
    return parseSamples(body)
  }
  return { dir, jobsLog, metricsFile, logs, collector, collect }
}

const job = (epoch: number, status: string, duration = 5, id = `j${epoch}`): string => `${epoch}|${status}|${duration}|${id}\n`

// First in the file: it reads the process's RSS high-water mark, which later cases would raise.
t.test('a 100 MiB line written at once between two collections: one invalid line, memory bounded', async (t) => {
  const { jobsLog, collect } = setup(t)
  writeFileSync(jobsLog, job(1700000000, 'success'))
  t.equal((await collect()).get(series('success')), 1)
  const rssBefore = process.memoryUsage().rss
  // One write, so the whole line is there when the collection starts: it must be streamed past.
  const line = Buffer.alloc(100 * 1024 * 1024, 'z')
  appendFileSync(jobsLog, line)
  appendFileSync(jobsLog, `\n${job(1700000001, 'failure')}`)
  const samples = await collect()
  // maxRSS includes the 100 MiB Buffer this test wrote the line from; anything the reader held on
  // top of it would show here.
  const peakGrowthMiB = (process.resourceUsage().maxRSS * 1024 - rssBefore) / 2 ** 20 - 100
  t.ok(peakGrowthMiB < 24, `peak RSS grew by ${peakGrowthMiB.toFixed(1)} MiB besides the line's own Buffer (< 24 MiB)`)
  t.equal(samples.get(INVALID), 1, 'the over-long line is one invalid line')
  t.equal(samples.get(series('success')), 1)
  t.equal(samples.get(series('failure')), 1, 'the job after it is counted')
})

t.test('binary garbage: every garbage line is counted invalid, the jobs around it are counted', async (t) => {
  const { jobsLog, collect } = setup(t)
  let seed = 7
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed >> 23
  }
  // 2,000 garbage lines of random bytes (NUL, CR, `|`, invalid UTF-8...): each starts with 0xff,
  // so none is blank and none can parse as a job.
  const parts: Buffer[] = []
  for (let i = 0; i < 2000; i++) {
    const bytes = Buffer.alloc(1 + (random() % 300))
    for (let j = 0; j < bytes.length; j++) bytes[j] = random()
    bytes[0] = 0xff
    for (let j = bytes.indexOf(0x0a); j !== -1; j = bytes.indexOf(0x0a, j)) bytes[j] = 0x00
    parts.push(bytes, Buffer.from('\n'))
    if (i % 100 === 0) parts.push(Buffer.from(job(1700000000 + i, 'success')))
  }
  writeFileSync(jobsLog, Buffer.concat(parts))
  const samples = await collect()
  t.equal(samples.get(INVALID), 2000)
  t.equal(samples.get(series('success')), 20)
  t.equal(samples.get(ERRORS), 0, 'garbage is not a collector error')

  appendFileSync(jobsLog, Buffer.from([0xc3, 0x28, 0x00, 0x0d, 0x0a]))
  appendFileSync(jobsLog, job(1700009999, 'cancelled'))
  const after = await collect()
  t.equal(after.get(INVALID), 2001)
  t.equal(after.get(series('cancelled')), 1)
})

t.test('100,000 lines appended between two collections: every one counted, in one bounded pass', async (t) => {
  const { jobsLog, collect } = setup(t)
  writeFileSync(jobsLog, job(1699999999, 'started'))
  await collect()
  const expected: Record<string, number> = { success: 0, failure: 0, cancelled: 0, skipped: 0, unknown: 0 }
  const buckets = new Array<number>(DURATION_BUCKETS.length + 1).fill(0)
  let sum = 0
  const lines: string[] = []
  for (let i = 0; i < 100_000; i++) {
    const status = FINISHED_STATUSES[i % FINISHED_STATUSES.length] as string
    const duration = (i * 37) % 9000
    expected[status]!++
    sum += duration
    const bucket = DURATION_BUCKETS.findIndex((bound) => duration <= bound)
    buckets[bucket === -1 ? DURATION_BUCKETS.length : bucket]!++
    lines.push(job(1700000000 + i, status, duration))
  }
  appendFileSync(jobsLog, lines.join(''))
  const startedAt = performance.now()
  const samples = await collect()
  const took = performance.now() - startedAt
  for (const status of FINISHED_STATUSES) t.equal(samples.get(series(status)), expected[status], `${status}: exact`)
  t.equal(samples.get(`github_runner_job_duration_seconds_count{${labels}}`), 100_000)
  t.equal(samples.get(`github_runner_job_duration_seconds_sum{${labels}}`), sum)
  let cumulative = 0
  for (const [i, bound] of DURATION_BUCKETS.entries()) {
    cumulative += buckets[i]!
    t.equal(samples.get(normalizeSeries(`github_runner_job_duration_seconds_bucket{${labels},le="${bound}"}`)), cumulative, `le=${bound}`)
  }
  t.equal(samples.get(INVALID), 0)
  t.ok(took < 3000, `the collection took ${took.toFixed(0)} ms (< 3 s)`)
})

t.test('deleted and re-created: the lines written before the deletion count, the new file adds to them', async (t) => {
  const { jobsLog, collect } = setup(t)
  writeFileSync(jobsLog, job(1700000000, 'success') + job(1700000001, 'success'))
  t.equal((await collect()).get(series('success')), 2)
  appendFileSync(jobsLog, job(1700000002, 'failure'))
  unlinkSync(jobsLog)
  const whileGone = await collect()
  t.equal(whileGone.get(series('failure')), 1, 'appended just before the deletion: counted')
  t.equal(whileGone.get(series('success')), 2, 'kept while the log is gone')
  t.equal(whileGone.get(ERRORS), 0, 'a missing log is no error')
  writeFileSync(jobsLog, job(1700000003, 'success'))
  const back = await collect()
  t.equal(back.get(series('success')), 3, 're-created: read from its start, added to the counts')
  t.equal(back.get(series('failure')), 1)
})

t.test('replaced by a directory: an error counted and logged once, counts kept, then it recovers', async (t) => {
  const { jobsLog, collect, logs } = setup(t)
  writeFileSync(jobsLog, job(1700000000, 'success'))
  await collect()
  appendFileSync(jobsLog, job(1700000001, 'skipped'))
  renameSync(jobsLog, `${jobsLog}.1`)
  mkdirSync(jobsLog)
  const first = await collect()
  t.equal(first.get(series('skipped')), 1, 'the old file was finished before the error')
  const second = await collect()
  t.equal(second.get(ERRORS), 2, 'each failed collection counted')
  t.equal(second.get(series('success')), 1, 'counts kept')
  t.equal(logs.length, 1, 'logged once')
  t.match(logs[0], /cannot read job log .*jobs\.log \(EISDIR\)/)
  rmdirSync(jobsLog)
  writeFileSync(jobsLog, job(1700000002, 'success'))
  const fixed = await collect()
  t.equal(fixed.get(series('success')), 2)
  t.equal(fixed.get(ERRORS), 2)
})

t.test('rotation: lines appended to the renamed file after the last collection are counted exactly once', async (t) => {
  const { jobsLog, collect } = setup(t)
  writeFileSync(jobsLog, job(1700000000, 'success') + job(1700000001, 'success'))
  await collect()
  renameSync(jobsLog, `${jobsLog}.1`)
  appendFileSync(`${jobsLog}.1`, job(1700000002, 'failure') + job(1700000003, 'failure') + job(1700000004, 'failure'))
  writeFileSync(jobsLog, job(1700000005, 'unknown') + job(1700000006, 'unknown'))
  const samples = await collect()
  t.equal(samples.get(series('success')), 2)
  t.equal(samples.get(series('failure')), 3, 'the three lines the rotated file gained')
  t.equal(samples.get(series('unknown')), 2, 'and the new file')
  const again = await collect()
  t.equal(again.get(series('failure')), 3, 'and not again on the next collection')
  t.equal(again.get(series('unknown')), 2)
})

/** How many of this process's descriptors are open on `path`. */
function descriptorsOn(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path
    } catch {
      return false
    }
  }).length
}

t.test('the job log is held open between collections and closed when the collector stops', async (t) => {
  const dir = t.testdir({ 'jobs.log': job(1700000000, 'success') })
  const jobsLog = join(dir, 'jobs.log')
  const { port1, port2 } = new MessageChannel()
  t.teardown(() => port2.close())
  // A port only reports 'close' while it is receiving.
  port2.on('message', () => {})
  runCollectorLoop({ jobsLog, metricsFile: join(dir, 'metrics.prom'), runnerName: 'rel', runnerType: 'standard', intervalSeconds: 3600, startedAtMs: Date.now() }, port1)
  await once(port2, 'message')
  t.equal(descriptorsOn(jobsLog), 1, 'held open after the first collection')
  // Stop while a collection runs and another waits for it: the one running finishes, the one
  // waiting is dropped, and only then is the log closed.
  port2.postMessage({ type: 'collect' })
  port2.postMessage({ type: 'collect' })
  port2.postMessage({ type: 'stop' })
  await once(port2, 'close')
  t.equal(descriptorsOn(jobsLog), 0, 'closed before the worker\'s port closes')
})

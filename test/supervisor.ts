import { join } from 'node:path'
import { existsSync, readFileSync, watch, writeFileSync } from 'node:fs'
import t from 'tap'
import { CollectorSupervisor, type SupervisorOptions } from '../src/collector/supervisor.js'
import type { CollectorSettings } from '../src/collector/messages.js'
import { parseSamples } from './fixtures/samples.js'

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url)

/** A log that tests can wait on: `next(pattern)` resolves with the first line (seen or coming) matching it. */
function waitableLog() {
  const lines: string[] = []
  const waiters: { pattern: RegExp; resolve: (line: string) => void; from: number }[] = []
  return {
    lines,
    log: (line: string) => {
      lines.push(line)
      for (const waiter of [...waiters]) {
        if (waiter.pattern.test(line)) {
          waiters.splice(waiters.indexOf(waiter), 1)
          waiter.resolve(line)
        }
      }
    },
    next(pattern: RegExp): Promise<string> {
      return new Promise((resolve) => waiters.push({ pattern, resolve, from: lines.length }))
    },
  }
}

function settings(dir: string, extra: Record<string, unknown> = {}): CollectorSettings {
  return {
    jobsLog: join(dir, 'jobs.log'),
    metricsFile: join(dir, 'metrics.prom'),
    runnerName: 'sup',
    runnerType: 'standard',
    intervalSeconds: 30,
    startedAtMs: Date.now(),
    ...extra,
  } as CollectorSettings
}

t.test('the real worker collects once before it reports ready, then stops gracefully', async (t) => {
  const dir = t.testdir({ 'jobs.log': '1700000000|success|12|a\n' })
  const { log, lines } = waitableLog()
  const supervisor = new CollectorSupervisor({ settings: settings(dir), log })
  t.teardown(() => supervisor.stop(0))
  await supervisor.start()
  const samples = parseSamples(readFileSync(join(dir, 'metrics.prom'), 'utf8'))
  t.equal(samples.get('github_runner_jobs_total{runner_name="sup",runner_type="standard",status="success"}'), 1)
  // an extra collection on request: the interval is 30 s, so only collectNow() can do this
  writeFileSync(join(dir, 'jobs.log'), '1700000000|success|12|a\n1700000001|failure|1|b\n')
  const watcher = watch(dir)
  const renamed = new Promise<void>((resolve) => watcher.on('change', (_type, name) => name === 'metrics.prom' && resolve()))
  supervisor.collectNow()
  await renamed
  watcher.close()
  t.equal(parseSamples(readFileSync(join(dir, 'metrics.prom'), 'utf8')).get('github_runner_jobs_total{runner_name="sup",runner_type="standard",status="failure"}'), 1)
  const stopping = supervisor.stop(1000)
  t.equal(supervisor.stop(), stopping, 'stop is safe to call twice')
  await stopping
  supervisor.collectNow()
  t.pass('collectNow after stop is a no-op')
  t.same(lines, [])
  t.equal(supervisor.restarts, 0)
})

t.test('a worker that dies after ready is restarted with a doubling delay', async (t) => {
  const dir = t.testdir({})
  const { log, next } = waitableLog()
  const options: SupervisorOptions = {
    settings: settings(dir, { crashAfterMs: 5 }),
    log,
    workerUrl: fixture('worker-ready-then-crash.mjs'),
    restartDelayMs: 10,
    maxRestartDelayMs: 40,
    healthyAfterMs: 60_000,
  }
  const supervisor = new CollectorSupervisor(options)
  t.teardown(() => supervisor.stop(0))
  const up = next(/^worker up sup$/)
  await supervisor.start()
  t.equal(await up, 'worker up sup', 'worker log lines reach the supervisor log')
  const delays: string[] = []
  for (let i = 0; i < 4; i++) {
    const line = await next(/^collector worker died/)
    t.match(line, /collector worker died \(collector crashed on purpose\); restarting it in \d+ ms, serving the last good file meanwhile/)
    delays.push(/in (\d+) ms/.exec(line)?.[1] as string)
  }
  t.same(delays, ['10', '20', '40', '40'], 'backoff doubles up to its cap')
  await supervisor.stop(0)
  t.ok(supervisor.restarts >= 3)
})

t.test('a worker that stayed up long enough starts the backoff over', async (t) => {
  const dir = t.testdir({})
  const { log, next } = waitableLog()
  const supervisor = new CollectorSupervisor({
    settings: settings(dir, { crashAfterMs: 30 }),
    log,
    workerUrl: fixture('worker-ready-then-crash.mjs'),
    restartDelayMs: 10,
    healthyAfterMs: 0,
  })
  t.teardown(() => supervisor.stop(0))
  await supervisor.start()
  for (let i = 0; i < 3; i++) t.match(await next(/^collector worker died/), /restarting it in 10 ms/)
})

t.test('a worker that cannot start is a startup error', async (t) => {
  const dir = t.testdir({})
  const { log } = waitableLog()
  const failing = new CollectorSupervisor({ settings: settings(dir), log, workerUrl: fixture('worker-fails-to-start.mjs') })
  await t.rejects(failing.start(), { code: 'ERR_WORKER_START', message: 'collector worker failed to start: cannot start on purpose' })
  const silent = new CollectorSupervisor({ settings: settings(dir), log, workerUrl: fixture('worker-silent-exit.mjs') })
  await t.rejects(silent.start(), { code: 'ERR_WORKER_START', message: 'collector worker failed to start: exit code 3' })
  const stuck = new CollectorSupervisor({ settings: settings(dir), log, workerUrl: fixture('worker-never-ready.mjs'), startTimeoutMs: 100 })
  await t.rejects(stuck.start(), { code: 'ERR_WORKER_START', message: 'collector worker failed to start: no ready message within 100 ms' })
  await failing.stop()
})

t.test('a restart that fails to start is retried with backoff', async (t) => {
  const dir = t.testdir({})
  const { log, next } = waitableLog()
  const supervisor = new CollectorSupervisor({
    settings: settings(dir, { markerFile: join(dir, 'started-once') }),
    log,
    workerUrl: fixture('worker-once-then-broken.mjs'),
    restartDelayMs: 10,
  })
  t.teardown(() => supervisor.stop(0))
  await supervisor.start()
  t.match(await next(/^collector worker died/), /exit code 1\); restarting it in 10 ms/)
  t.equal(await next(/retrying/), 'collector worker failed to start: broken after the first start; retrying in 20 ms')
  t.equal(await next(/retrying/), 'collector worker failed to start: broken after the first start; retrying in 40 ms')
})

t.test('stop during a restart that fails to start ends quietly', async (t) => {
  const dir = t.testdir({})
  const { log, lines, next } = waitableLog()
  const supervisor = new CollectorSupervisor({
    settings: settings(dir, { markerFile: join(dir, 'started-once') }),
    log,
    workerUrl: fixture('worker-once-then-broken.mjs'),
    restartDelayMs: 1,
  })
  await supervisor.start()
  await next(/^collector worker died/)
  // the restart timer fires within a millisecond; stop while that worker is failing to start
  while (supervisor.restarts === 0) await new Promise((resolve) => setImmediate(resolve))
  await supervisor.stop(1000)
  t.equal(lines.filter((line) => /retrying/.test(line)).length, 0, 'no retry after the stop')
  t.equal(supervisor.restarts, 1)
})

t.test('an unknown message is a protocol bug: the worker is terminated and restarted', async (t) => {
  const dir = t.testdir({})
  const { log, next } = waitableLog()
  const supervisor = new CollectorSupervisor({ settings: settings(dir), log, workerUrl: fixture('worker-bad-message.mjs'), restartDelayMs: 10 })
  t.teardown(() => supervisor.stop(0))
  const bug = next(/^bug:/)
  await supervisor.start()
  t.equal(await bug, 'bug: collector worker sent an unknown message: {"type":"surprise"}; restarting it')
  t.match(await next(/^collector worker died/), /collector worker sent an unknown message/)
})

t.test('stop terminates a worker that ignores it, after the grace period', async (t) => {
  const dir = t.testdir({})
  const { log } = waitableLog()
  process.env.NEVER_READY_SENDS_READY = '1'
  t.teardown(() => delete process.env.NEVER_READY_SENDS_READY)
  const supervisor = new CollectorSupervisor({ settings: settings(dir), log, workerUrl: fixture('worker-never-ready.mjs') })
  await supervisor.start()
  const started = performance.now()
  await supervisor.stop(150)
  const took = performance.now() - started
  t.ok(took >= 140 && took < 1000, `forced after the grace period (${took.toFixed(0)} ms)`)
  t.notOk(existsSync(join(dir, 'metrics.prom')))
})

// End to end against the real thing: Debian's `prometheus` scrapes `node dist/cli.js serve` every
// second (through a small TCP proxy that records each exchange's headers, to see gzip on the
// wire), evaluates deploy/prometheus/rules.yml, and serves every expression of the Grafana
// dashboard. The subtests run in order over one exporter and one Prometheus.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createServer, connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { startExporter } from './fixtures/exporter.js'
import { startPrometheus, type Sample } from './fixtures/prometheus.js'

const RULES = fileURLToPath(new URL('../deploy/prometheus/rules.yml', import.meta.url))
const DASHBOARD = fileURLToPath(new URL('../deploy/grafana/runner-metrics.json', import.meta.url))
const JOB = 'github-runners-e2e'

interface Exchange {
  request: string
  response: string
}

/** A TCP proxy that forwards bytes untouched and keeps the head of each request and response. */
async function startWitnessProxy(upstreamPort: number): Promise<{ port: number; exchanges: Exchange[]; close(): Promise<void> }> {
  const exchanges: Exchange[] = []
  const sockets = new Set<Socket>()
  const head = (text: string, chunk: Buffer): string => (text.includes('\r\n\r\n') ? text : text + chunk.toString('latin1'))
  const server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1')
    const exchange: Exchange = { request: '', response: '' }
    exchanges.push(exchange)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
    }
    client.on('data', (chunk: Buffer) => (exchange.request = head(exchange.request, chunk)))
    upstream.on('data', (chunk: Buffer) => (exchange.response = head(exchange.response, chunk)))
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.pipe(upstream)
    upstream.pipe(client)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as { port: number }).port,
    exchanges,
    async close() {
      const closed = once(server, 'close')
      server.close()
      for (const socket of sockets) socket.destroy()
      await closed
    },
  }
}

/** Samples keyed by one label, e.g. jobs_total by status. */
const byLabel = (samples: Sample[], label: string): Record<string, number> =>
  Object.fromEntries(samples.map((sample) => [sample.labels[label], sample.value]))

/** The sample lines of an exposition body (what Prometheus counts in scrape_samples_scraped). */
const sampleLines = (body: string): string[] => body.split('\n').filter((line) => line !== '' && !line.startsWith('#'))

/** Job-log lines, all finished (or started) at `epoch`. */
const jobLines = (epoch: number, jobs: [status: string, duration: number, jobId: string][]): string =>
  jobs.map(([status, duration, jobId]) => `${epoch}|${status}|${duration}|${jobId}\n`).join('')

const now = Math.floor(Date.now() / 1000)
const firstEpoch = now - 600
const secondEpoch = now - 60

const dir = t.testdir({})
const exporter = await startExporter(t, { dir, runnerName: 'e2e-runner', runnerType: 'chrome' })
const proxy = await startWitnessProxy(exporter.port)
t.teardown(() => proxy.close())
const prometheus = await startPrometheus(t, {
  scrapeConfigs: [{ job_name: JOB, static_configs: [{ targets: [`127.0.0.1:${proxy.port}`] }] }],
  ruleFiles: [RULES],
})
const runner = `job="${JOB}"`

t.test('Prometheus scrapes the exporter: up, and every job counter at 0 before any job', async (t) => {
  const up = await prometheus.waitFor(`up{${runner}}`, (s) => s[0]?.value === 1)
  t.same(up.map((s) => s.value), [1])
  const jobs = await prometheus.query(`github_runner_jobs_total{${runner}}`)
  t.same(byLabel(jobs, 'status'), { success: 0, failure: 0, cancelled: 0, skipped: 0, unknown: 0 })
  for (const { labels } of jobs) {
    t.same(Object.keys(labels).sort(), ['__name__', 'instance', 'job', 'runner_name', 'runner_type', 'status'])
    t.match(labels, { instance: `127.0.0.1:${proxy.port}`, job: JOB, runner_name: 'e2e-runner', runner_type: 'chrome' })
  }
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  const info = await prometheus.query(`github_runner_info{${runner}}`)
  t.same(info.map((s) => [s.labels.version, s.value]), [[version, 1]])
})

// Durations put one job in each of several buckets: 3 (le 5), 12.5 (le 15), 20 (le 30),
// 45 (le 60), 100 (le 120), 250 (le 300), 700 (le 900), 4000 (le 7200).
const firstLog =
  jobLines(firstEpoch, [
    ['success', 3, 'job-1'],
    ['success', 12.5, 'job-2'],
    ['success', 45, 'job-3'],
    ['failure', 100, 'job-4'],
    ['failure', 250, 'job-5'],
    ['cancelled', 20, 'job-6'],
    ['completed', 700, 'job-7'],
    ['FAILED', 4000, 'job-8'],
  ]) +
  'not a job line\n' +
  jobLines(firstEpoch, [
    ['exploded', 1, 'job-9'],
    ['started', 0, 'job-10'],
  ])

t.test('job lines arrive in Prometheus with exact values', async (t) => {
  appendFileSync(exporter.jobsLog, firstLog)
  // The last line starts a job: once Prometheus sees the runner busy, every line was read.
  const busy = await prometheus.waitFor(`github_runner_busy{${runner}}`, (s) => s[0]?.value === 1)
  t.same(busy.map((s) => s.value), [1])
  const jobs = await prometheus.query(`github_runner_jobs_total{${runner}}`)
  t.same(byLabel(jobs, 'status'), { success: 4, failure: 3, cancelled: 1, skipped: 0, unknown: 0 })
  t.same((await prometheus.query(`github_runner_job_duration_seconds_count{${runner}}`)).map((s) => s.value), [8])
  t.same((await prometheus.query(`github_runner_job_duration_seconds_sum{${runner}}`)).map((s) => s.value), [5130.5])
  const buckets = byLabel(await prometheus.query(`github_runner_job_duration_seconds_bucket{${runner}}`), 'le')
  t.same(buckets, { '5': 1, '15': 2, '30': 3, '60': 4, '120': 5, '300': 6, '600': 6, '900': 7, '1800': 7, '3600': 7, '7200': 8, '+Inf': 8 })
  t.same((await prometheus.query(`github_runner_jobs_log_invalid_lines_total{${runner}}`)).map((s) => s.value), [2])
  t.same((await prometheus.query(`github_runner_last_job_completed_timestamp_seconds{${runner}}`)).map((s) => s.value), [firstEpoch])
})

t.test('scrape_samples_scraped equals the samples the endpoint serves, and promtool accepts them', async (t) => {
  const body = await (await fetch(exporter.url)).text()
  const served = sampleLines(body).length
  // The series of issue 2: info, uptime, 5 job counters, 12 buckets + sum + count, busy, last
  // completed, invalid lines, 3 collector series, 5 process series.
  t.equal(served, 32)
  const scraped = await prometheus.waitFor(`scrape_samples_scraped{${runner}}`, (s) => s[0]?.value === served)
  t.same(scraped.map((s) => s.value), [served])

  const promtool = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  promtool.stdout.on('data', (chunk: Buffer) => (output += chunk))
  promtool.stderr.on('data', (chunk: Buffer) => (output += chunk))
  promtool.stdin.end(body)
  const [code] = await once(promtool, 'close')
  t.equal(code, 0)
  t.equal(output, '', 'no lint findings')
})

t.test('a rotated job log never makes a counter go down', async (t) => {
  renameSync(exporter.jobsLog, `${exporter.jobsLog}.1`)
  // More lines than before: the new file is larger than the old one, so only its inode says it
  // is a new file.
  const secondLog = jobLines(secondEpoch, [
    ['success', 30, 'job-10'],
    ['success', 61, 'job-11'],
    ['succeeded', 62, 'job-12'],
    ['failure', 5, 'job-13'],
    ['failed', 1800, 'job-14'],
    ['canceled', 10, 'job-15'],
    ['skipped', 0, 'job-16'],
    ['unknown', 7000, 'job-17'],
    ['success', 14, 'job-18'],
    ['SucceededWithIssues', 2, 'job-19'],
    ['abandoned', 3, 'job-20'],
    ['success', 119, 'job-21'],
  ])
  t.ok(secondLog.length > firstLog.length)
  writeFileSync(exporter.jobsLog, secondLog)

  // Every line finishes a job: once Prometheus counts 20 jobs, every line was read.
  const count = await prometheus.waitFor(`github_runner_job_duration_seconds_count{${runner}}`, (s) => s[0]?.value === 20)
  t.same(count.map((s) => s.value), [20])
  const jobs = await prometheus.query(`github_runner_jobs_total{${runner}}`)
  t.same(byLabel(jobs, 'status'), { success: 10, failure: 5, cancelled: 3, skipped: 1, unknown: 1 })
  t.same((await prometheus.query(`github_runner_job_duration_seconds_sum{${runner}}`)).map((s) => s.value), [5130.5 + 9106])
  t.same((await prometheus.query(`github_runner_busy{${runner}}`)).map((s) => s.value), [0])
  t.same((await prometheus.query(`github_runner_last_job_completed_timestamp_seconds{${runner}}`)).map((s) => s.value), [secondEpoch])

  // Every counter of the exporter over the whole run: the job counters, the histogram, the
  // invalid lines, the collector errors and the CPU seconds.
  const counters = [
    'github_runner_jobs_total',
    'github_runner_job_duration_seconds_bucket',
    'github_runner_job_duration_seconds_sum',
    'github_runner_job_duration_seconds_count',
    'github_runner_jobs_log_invalid_lines_total',
    'github_runner_collector_errors_total',
    'process_cpu_seconds_total',
  ]
  const resets: Sample[] = []
  for (const name of counters) resets.push(...(await prometheus.query(`resets(${name}{${runner}}[10m])`)))
  t.equal(resets.length, 5 + 12 + 1 + 1 + 1 + 1 + 1)
  t.same(resets.filter((s) => s.value !== 0), [], 'no counter ever reset')
})

t.test('every scrape succeeded, with gzip on the wire', async (t) => {
  t.same((await prometheus.query(`min_over_time(up{${runner}}[10m])`)).map((s) => s.value), [1], 'up never 0')
  const scrapes = (await prometheus.query(`count_over_time(up{${runner}}[10m])`))[0]?.value ?? 0
  t.ok(scrapes >= 3, `${scrapes} scrapes`)

  // Prometheus' own counters of scrapes it had to drop or cut short.
  const own = await prometheus.ownMetrics()
  const failures = [
    'prometheus_target_scrapes_exceeded_body_size_limit_total',
    'prometheus_target_scrapes_exceeded_sample_limit_total',
    'prometheus_target_scrapes_sample_duplicate_timestamp_total',
    'prometheus_target_scrapes_sample_out_of_bounds_total',
    'prometheus_target_scrapes_sample_out_of_order_total',
    'prometheus_target_scrapes_exemplar_out_of_order_total',
    'prometheus_target_scrapes_cache_flush_forced_total',
    'prometheus_target_scrape_pool_exceeded_label_limits_total',
    'prometheus_target_scrape_pool_exceeded_target_limit_total',
    'prometheus_target_scrape_pools_failed_total',
    `prometheus_target_sync_failed_total{scrape_job="${JOB}"}`,
  ]
  for (const name of failures) t.match(own, `\n${name} 0\n`, `${name} is 0`)

  // Every scrape went through the proxy: Prometheus asked for gzip and got it, always 200.
  // One scrape may be in flight right now.
  const answered = proxy.exchanges.filter((exchange) => exchange.response !== '')
  t.ok(answered.length >= scrapes, `${answered.length} answered exchanges`)
  t.ok(proxy.exchanges.length - answered.length <= 1)
  for (const { request, response } of answered) {
    t.match(request, /^GET \/metrics HTTP\/1\.1\r\n/)
    t.match(request, /\r\nAccept-Encoding: gzip\r\n/i)
    t.match(response, /^HTTP\/1\.1 200 OK\r\n/)
    t.match(response, /\r\nContent-Encoding: gzip\r\n/)
  }
})

/** Each comparison made `bool`, so an alert's expression returns its data whether it fires or not. */
function withBoolComparisons(expr: string): string {
  let out = ''
  let braces = 0
  let quote = ''
  for (let i = 0; i < expr.length; i++) {
    const char = expr[i] as string
    out += char
    if (quote) {
      if (char === '\\') out += expr[++i]
      else if (char === quote) quote = ''
      continue
    }
    if (char === '"' || char === "'") quote = char
    else if (char === '{') braces++
    else if (char === '}') braces--
    else if (braces === 0 && /[=!<>]/.test(char)) {
      const operator = expr.slice(i, i + 2)
      if (/^(==|!=|<=|>=)$/.test(operator)) out += expr[++i]
      else if (!/^[<>]/.test(operator)) continue
      if (!/^\s*bool\b/.test(expr.slice(i + 1))) out += ' bool'
    }
  }
  return out
}

interface Rule {
  name: string
  query: string
  type: 'recording' | 'alerting'
  health: string
  lastError?: string
}

t.test('every rule is healthy, and every rule and dashboard expression returns data', async (t) => {
  t.equal(withBoolComparisons('a{b!="c"} > 0 and on (x) d == 1'), 'a{b!="c"} > bool 0 and on (x) d == bool 1')

  const groups = async (): Promise<Rule[]> =>
    ((await prometheus.api('/api/v1/rules')) as { groups: { rules: Rule[] }[] }).groups.flatMap((group) => group.rules)
  // Rules evaluate every second; wait until each has been evaluated once.
  let rules = await groups()
  for (const deadline = Date.now() + 30_000; rules.some((rule) => rule.health !== 'ok') && Date.now() < deadline; ) {
    await sleep(200)
    rules = await groups()
  }
  t.equal(rules.length, 11)
  for (const rule of rules) t.same({ name: rule.name, health: rule.health, lastError: rule.lastError ?? '' }, { name: rule.name, health: 'ok', lastError: '' })

  const expressions = new Map<string, string>()
  for (const rule of rules) {
    if (rule.type === 'alerting') {
      // An alert's expression returns nothing while the alert is quiet: run it as written (it
      // must parse), then with its comparisons as `bool` (its data must be there).
      await prometheus.query(rule.query)
      expressions.set(`alert ${rule.name}`, withBoolComparisons(rule.query))
    } else {
      expressions.set(`record ${rule.name}`, rule.query)
    }
  }
  for (const [name, expr] of dashboardExpressions()) expressions.set(name, expr)
  t.ok(expressions.size > 25, `${expressions.size} expressions`)

  for (const [name, expr] of expressions) {
    const samples = await prometheus.waitFor(expr, (s) => s.length > 0)
    t.ok(samples.length > 0, `${name} returns data`, { expr })
  }
})

/** What Grafana would substitute, as the test data covers it. */
const GRAFANA_VARIABLES: Record<string, string> = {
  __rate_interval: '1m',
  __interval: '15s',
  __range: '10m',
  window: '10m',
  job: JOB,
  runner_type: '.*',
  runner_name: '.*',
}

/** Every PromQL expression of the dashboard: the panels' targets and the query variables. */
function dashboardExpressions(): [string, string][] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels: { title: string; targets?: { expr: string; refId: string }[] }[]
    templating: { list: { name: string; type: string; query: unknown }[] }
  }
  const substitute = (expr: string): string =>
    expr.replace(/\$\{?(\w+)\}?/g, (variable, name: string) => {
      const value = GRAFANA_VARIABLES[name]
      if (value === undefined) throw new Error(`unknown Grafana variable ${variable} in ${expr}`)
      return value
    })
  const found: [string, string][] = []
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) found.push([`panel "${panel.title}" ${target.refId}`, substitute(target.expr)])
  }
  for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
    // label_values(selector, label) lists the values of `label` in the series of `selector`.
    const match = String(variable.query).match(/^label_values\((.+), (\w+)\)$/)
    if (!match) throw new Error(`variable ${variable.name}: not label_values(selector, label)`)
    found.push([`variable ${variable.name}`, substitute(`count by (${match[2]}) (${match[1]})`)])
  }
  return found
}

t.test('the exporter stops cleanly after answering every request with 200', async (t) => {
  const exit = await exporter.stop()
  t.same(exit, { code: 0, signal: null })
  const stopped = exporter.stderr().match(/runner-metrics: stopped; served (\d+) responses \((\d+) 200 OK\)/)
  t.ok(stopped, exporter.stderr())
  t.equal(stopped?.[2], stopped?.[1], 'every response was 200 OK')
  t.ok(Number(stopped?.[1]) >= proxy.exchanges.length)
})

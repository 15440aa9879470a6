// A fleet on one machine: 20 exporters on loopback ports, each with its own job log and runner
// name, listed in a file_sd file, scraped by one real Prometheus. Every runner is up with its own
// values, and the fleet total is what was written.
import t from 'tap'
import { mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startExporter } from './fixtures/exporter.js'
import { startPrometheus, type Sample } from './fixtures/prometheus.js'

const JOB = 'github-runners-fleet'
const RUNNERS = 20
const TYPES = ['standard', 'chrome', 'chrome-go']
const STATUSES = ['success', 'failure', 'cancelled', 'skipped', 'unknown'] as const

interface Plan {
  name: string
  type: string
  jobs: Record<(typeof STATUSES)[number], number>
  busy: number
}

// Different counts on every runner, so a value that lands on the wrong runner is noticed.
const plans: Plan[] = Array.from({ length: RUNNERS }, (_, i) => ({
  name: `fleet-runner-${String(i).padStart(2, '0')}`,
  type: TYPES[i % TYPES.length] as string,
  jobs: { success: i + 1, failure: i % 4, cancelled: i % 5 === 0 ? 1 : 0, skipped: i % 7 === 0 ? 1 : 0, unknown: 0 },
  busy: i % 2,
}))

function jobLog(plan: Plan): string {
  const epoch = Math.floor(Date.now() / 1000)
  const lines: string[] = []
  for (const status of STATUSES) {
    for (let n = 0; n < plan.jobs[status]; n++) lines.push(`${epoch}|${status}|${10 * (n + 1)}|${plan.name}-${status}-${n}`)
  }
  if (plan.busy) lines.push(`${epoch}|started|0|${plan.name}-running`)
  return lines.map((line) => `${line}\n`).join('')
}

const byRunner = (samples: Sample[]): Record<string, number> =>
  Object.fromEntries(samples.map((sample) => [sample.labels.runner_name, sample.value]))

t.test('Prometheus scrapes 20 exporters found by file_sd, each with its own values', async (t) => {
  const root = t.testdir({ targets: {} })
  const targetsFile = join(root, 'targets', 'runners.json')
  // Prometheus starts while the exporters do, before the targets file exists: file_sd picks the
  // file up when it appears, as it would when a fleet grows.
  const [prometheus, exporters] = await Promise.all([
    startPrometheus(t, { scrapeConfigs: [{ job_name: JOB, file_sd_configs: [{ files: [targetsFile], refresh_interval: '1s' }] }] }),
    Promise.all(
      plans.map((plan) => {
        const dir = join(root, plan.name)
        mkdirSync(dir)
        // Written before the exporter starts: its first collection has every job.
        writeFileSync(join(dir, 'jobs.log'), jobLog(plan))
        return startExporter(t, { dir, runnerName: plan.name, runnerType: plan.type, interval: 1 })
      }),
    ),
  ])
  const instanceOf = Object.fromEntries(plans.map((plan, i) => [plan.name, `127.0.0.1:${exporters[i]?.port}`]))
  // Atomically, so Prometheus never reads half a file.
  writeFileSync(`${targetsFile}.tmp`, JSON.stringify([{ targets: Object.values(instanceOf), labels: { fleet: 'loopback' } }]))
  renameSync(`${targetsFile}.tmp`, targetsFile)

  const total = plans.reduce((sum, plan) => sum + STATUSES.reduce((n, status) => n + plan.jobs[status], 0), 0)
  const sum = await prometheus.waitFor(`sum(github_runner_jobs_total{job="${JOB}"})`, (s) => s[0]?.value === total)
  t.same(sum.map((s) => s.value), [total], `sum(github_runner_jobs_total) is the ${total} jobs written`)

  const up = await prometheus.query(`up{job="${JOB}"}`)
  t.equal(up.length, RUNNERS)
  t.same(Object.fromEntries(up.map((s) => [s.labels.instance, s.value])), Object.fromEntries(Object.values(instanceOf).map((instance) => [instance, 1])), 'all 20 up')

  const info = await prometheus.query(`github_runner_info{job="${JOB}"}`)
  t.same(
    Object.fromEntries(info.map((s) => [s.labels.runner_name, [s.labels.instance, s.labels.runner_type, s.labels.fleet]])),
    Object.fromEntries(plans.map((plan) => [plan.name, [instanceOf[plan.name], plan.type, 'loopback']])),
    'each runner on its own target, with its type and the file_sd label',
  )

  for (const status of STATUSES) {
    const jobs = await prometheus.query(`github_runner_jobs_total{job="${JOB}", status="${status}"}`)
    t.same(byRunner(jobs), Object.fromEntries(plans.map((plan) => [plan.name, plan.jobs[status]])), `${status} per runner`)
  }
  const busy = await prometheus.query(`github_runner_busy{job="${JOB}"}`)
  t.same(byRunner(busy), Object.fromEntries(plans.map((plan) => [plan.name, plan.busy])), 'busy per runner')
})

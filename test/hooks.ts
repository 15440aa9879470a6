// hooks/job-started.sh and hooks/job-completed.sh, run the way the runner runs them: `bash -e`.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parseJobLine } from '../src/collector/jobs.js'
import { JOB_COMPLETED_HOOK, JOB_STARTED_HOOK } from './fixtures/runner-image.js'

interface HookRun {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

const JOB_ENV = { GITHUB_REPOSITORY: 'octo/app', GITHUB_RUN_ID: '123', GITHUB_RUN_ATTEMPT: '2', GITHUB_JOB: 'build' }

async function runHook(hook: string, env: Record<string, string>): Promise<HookRun> {
  const started = process.hrtime.bigint()
  const child = spawn('bash', ['-e', hook], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, stdout, stderr, ms: Number(process.hrtime.bigint() - started) / 1e6 }
}

function lines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').slice(0, -1)
}

t.test('job-started appends one started line with the job identity', async (t) => {
  const jobsLog = join(t.testdir({}), 'jobs.log')
  const before = Date.now() / 1000
  const run = await runHook(JOB_STARTED_HOOK, { ...JOB_ENV, JOBS_LOG: jobsLog })
  t.same([run.code, run.stdout, run.stderr], [0, '', ''])
  const [line, ...rest] = lines(jobsLog)
  t.same(rest, [])
  t.match(line, /^\d+\.\d{6}\|started\|0\|octo\/app\/123\/2\/build$/)
  const parsed = parseJobLine(line as string)
  t.equal(parsed.kind, 'event')
  if (parsed.kind === 'event') t.ok(parsed.event.epochSeconds >= before - 0.01 && parsed.event.epochSeconds <= Date.now() / 1000 + 0.01)
})

t.test('job-started keeps the log line-safe and works without GITHUB_* at all', async (t) => {
  const jobsLog = join(t.testdir({}), 'jobs.log')
  await runHook(JOB_STARTED_HOOK, { ...JOB_ENV, GITHUB_JOB: 'a|b\nc\rd', JOBS_LOG: jobsLog })
  await runHook(JOB_STARTED_HOOK, { JOBS_LOG: jobsLog })
  const [first, second] = lines(jobsLog)
  t.match(first, /\|started\|0\|octo\/app\/123\/2\/a_b_c_d$/)
  t.match(second, /\|started\|0\|\/\/\/$/)
})

t.test('a job log that cannot be written: exit 0 and a message in the job output', async (t) => {
  const dir = t.testdir({ 'a-directory': {} })
  for (const [hook, env] of [
    [JOB_STARTED_HOOK, {}],
    [JOB_COMPLETED_HOOK, {}],
  ] as const) {
    for (const jobsLog of [join(dir, 'missing', 'jobs.log'), join(dir, 'a-directory')]) {
      const run = await runHook(hook, { ...JOB_ENV, ...env, JOBS_LOG: jobsLog })
      t.equal(run.code, 0, `${hook} with ${jobsLog}`)
      t.match(run.stdout, new RegExp(`^runner-metrics: cannot append to the job log ${jobsLog}; this job (start|end) is not recorded \\(the job goes on\\)\\n$`))
      t.equal(run.stderr, '')
    }
  }
})

t.test('concurrent hooks never mix their lines', async (t) => {
  const jobsLog = join(t.testdir({}), 'jobs.log')
  const runs = await Promise.all(
    Array.from({ length: 40 }, (_, i) => runHook(JOB_STARTED_HOOK, { ...JOB_ENV, GITHUB_RUN_ID: String(i), GITHUB_JOB: 'x'.repeat(400), JOBS_LOG: jobsLog })),
  )
  t.ok(runs.every((run) => run.code === 0))
  const written = lines(jobsLog)
  t.equal(written.length, 40)
  t.ok(written.every((line) => parseJobLine(line).kind === 'event'), 'every line whole')
  t.same(new Set(written.map((line) => line.split('/')[2])).size, 40, 'one line per hook')
})

t.test('job-completed under the entrypoint leaves the finish line to the exporter', async (t) => {
  const jobsLog = join(t.testdir({}), 'jobs.log')
  const run = await runHook(JOB_COMPLETED_HOOK, { ...JOB_ENV, JOBS_LOG: jobsLog, RUNNER_OUTPUT_LOG: '/tmp/runner-output.log' })
  t.same([run.code, run.stdout, run.stderr], [0, '', ''])
  t.same(readFileSync(jobsLog, { flag: 'a+' }).toString(), '', 'nothing written: the runner output has the result')
})

t.test('job-completed on its own records an unknown result with the duration since its start', async (t) => {
  const jobsLog = join(t.testdir({}), 'jobs.log')
  const now = Date.now() / 1000
  writeFileSync(jobsLog, [`${(now - 65.25).toFixed(6)}|started|0|octo/app/123/2/build`, `${(now - 10).toFixed(6)}|started|0|other/job/1/1/x`, 'garbage', ''].join('\n'))
  const run = await runHook(JOB_COMPLETED_HOOK, { ...JOB_ENV, JOBS_LOG: jobsLog })
  t.same([run.code, run.stdout, run.stderr], [0, '', ''])
  const line = lines(jobsLog).at(-1) as string
  t.match(line, /^\d+\.\d{6}\|unknown\|\d+\.\d{6}\|octo\/app\/123\/2\/build$/)
  const parsed = parseJobLine(line)
  if (parsed.kind !== 'event') throw new Error('not an event')
  t.ok(parsed.event.durationSeconds >= 65.25 && parsed.event.durationSeconds < 70, `duration ${parsed.event.durationSeconds}`)

  const fresh = join(t.testdir({}), 'jobs.log')
  await runHook(JOB_COMPLETED_HOOK, { ...JOB_ENV, JOBS_LOG: fresh })
  t.match(lines(fresh), [/^\d+\.\d{6}\|unknown\|0\|octo\/app\/123\/2\/build$/], 'no start found: duration 0, still one finish')
})

t.test('the hooks finish well under 50 ms', async (t) => {
  const dir = t.testdir({})
  mkdirSync(join(dir, 'logs'))
  const jobsLog = join(dir, 'logs', 'jobs.log')
  const figures: Record<string, { median: number; max: number }> = {}
  for (const [name, hook, env] of [
    ['job-started', JOB_STARTED_HOOK, {}],
    ['job-completed (entrypoint)', JOB_COMPLETED_HOOK, { RUNNER_OUTPUT_LOG: '/tmp/x' }],
    ['job-completed (alone)', JOB_COMPLETED_HOOK, {}],
  ] as const) {
    const times: number[] = []
    for (let i = 0; i < 15; i++) times.push((await runHook(hook, { ...JOB_ENV, ...env, JOBS_LOG: jobsLog })).ms)
    times.sort((a, b) => a - b)
    figures[name] = { median: times[7] as number, max: times[14] as number }
  }
  t.comment(`hook wall time incl. bash start-up, ms: ${JSON.stringify(figures)}`)
  for (const [name, { median, max }] of Object.entries(figures)) {
    t.ok(median < 50, `${name}: median ${median.toFixed(1)} ms < 50 ms`)
    // A shared 2-core machine under a parallel test suite: only an outlier bound here.
    t.ok(max < 500, `${name}: max ${max.toFixed(1)} ms`)
  }
})

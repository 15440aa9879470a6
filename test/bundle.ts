// scripts/bundle.mjs: the exporter as two self-contained files that run with a plain `node` from
// a directory with no node_modules anywhere above it, and serve (the collector worker included).
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { VERSION } from '../src/version.js'
import { freePort } from './fixtures/net.js'
import { REPO, scrapeUntil } from './fixtures/runner-image.js'

const run = promisify(execFile)

// Outside the repository: Node must not find the project's node_modules by walking up.
const dir = mkdtempSync(join(tmpdir(), 'runner-metrics-bundle-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
for (let up = dir; up !== dirname(up); up = dirname(up)) {
  if (readdirSync(dirname(up)).includes('node_modules')) throw new Error(`${dirname(up)} has a node_modules: pick another temp dir`)
}

t.test('the bundle is two files that import nothing but Node itself', async (t) => {
  const { stdout } = await run(process.execPath, [join(REPO, 'scripts', 'bundle.mjs'), '--outdir', dir], { cwd: REPO })
  t.match(stdout, /cli\.js .* KiB\n.*worker\.js .* KiB\n/)
  t.same(readdirSync(dir).sort(), ['cli.js', 'worker.js'])
  const { stdout: version } = await run(process.execPath, [join(dir, 'cli.js'), '--version'], { cwd: dir, env: {} })
  t.equal(version, `${VERSION}\n`)
})

t.test('the bundle serves metrics collected by its worker, and stops on SIGTERM', async (t) => {
  const port = await freePort()
  const jobsLog = join(dir, 'jobs.log')
  writeFileSync(jobsLog, '1736937000|started|0|a\n1736937042|failed|42|a\n')
  const child = spawn(
    process.execPath,
    [join(dir, 'cli.js'), 'serve', '--host', '127.0.0.1', '--port', String(port), '--metrics-file', join(dir, 'metrics.prom'), '--jobs-log', jobsLog, '--interval', '0.1', '--runner-name', 'bundled'],
    { cwd: dir, env: {}, stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  t.teardown(() => child.kill('SIGKILL'))
  const samples = await scrapeUntil(port, (m) => m.get('github_runner_jobs_total{runner_name="bundled",runner_type="standard",status="failure"}') === 1)
  t.equal(samples.get('github_runner_job_duration_seconds_sum{runner_name="bundled",runner_type="standard"}'), 42)
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
  t.match(stderr, /runner-metrics: serving .*\nrunner-metrics: stopped; served \d+ responses/)
})

t.test('the bundle script refuses arguments it does not know', async (t) => {
  await t.rejects(run(process.execPath, [join(REPO, 'scripts', 'bundle.mjs'), '--out', dir], { cwd: REPO }), {
    code: 1,
    stderr: 'bundle: unknown argument "--out" (usage: node scripts/bundle.mjs [--outdir DIR])\n',
  })
})

// docker/entrypoint.sh under bash, with a fake run.sh that prints real runner lines and runs the
// real hooks, and the real exporter (dist/cli.js) on a loopback port.
import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { freePort } from './fixtures/net.js'
import {
  CLI,
  commandLine,
  ENTRYPOINT,
  FAKE_RUN,
  groupMembers,
  JOB_COMPLETED_HOOK,
  JOB_STARTED_HOOK,
  jobsTotal,
  REPO,
  runnerSample,
  scrapeUntil,
  startEntrypoint,
} from './fixtures/runner-image.js'

const RUNNER = 'fake-runner'

interface Setup {
  dir: string
  port: number
  env: Record<string, string>
  jobsLog: string
  transcript: string
  hookOutput: string
  gate: string
}

async function setup(t: Test, jobs: string[], overrides: Record<string, string> = {}): Promise<Setup> {
  const dir = t.testdir({})
  const port = await freePort()
  const gate = join(dir, 'gate')
  execFileSync('mkfifo', [gate])
  const paths = {
    jobsLog: join(dir, 'jobs.log'),
    transcript: join(dir, 'transcript'),
    hookOutput: join(dir, 'hook-output'),
  }
  writeFileSync(paths.transcript, '')
  writeFileSync(paths.hookOutput, '')
  const env: Record<string, string> = {
    RUNNER_DIR: dir,
    RUNNER_COMMAND: FAKE_RUN,
    RUNNER_NODE: process.execPath,
    RUNNER_METRICS_CLI: CLI,
    ACTIONS_RUNNER_HOOK_JOB_STARTED: JOB_STARTED_HOOK,
    ACTIONS_RUNNER_HOOK_JOB_COMPLETED: JOB_COMPLETED_HOOK,
    METRICS_PORT: String(port),
    METRICS_HOST: '127.0.0.1',
    METRICS_FILE: join(dir, 'metrics.prom'),
    METRICS_INTERVAL: '0.1',
    JOBS_LOG: paths.jobsLog,
    RUNNER_OUTPUT_LOG: join(dir, 'runner-output.log'),
    RUNNER_NAME: RUNNER,
    METRICS_LINGER_SECONDS: '1',
    METRICS_RESTART_DELAY_SECONDS: '0.1',
    METRICS_STOP_GRACE_SECONDS: '3',
    FAKE_RUNNER_JOBS: jobs.join('\n'),
    FAKE_RUNNER_GATE: gate,
    FAKE_RUNNER_TRANSCRIPT: paths.transcript,
    FAKE_RUNNER_HOOK_OUTPUT: paths.hookOutput,
    ...overrides,
  }
  return { dir, port, env, gate, ...paths }
}

function openGate(gate: string): Promise<void> {
  return writeFile(gate, 'go\n')
}

function jobLogLines(jobsLog: string, status: 'started' | 'finish'): string[][] {
  return readFileSync(jobsLog, 'utf8')
    .split('\n')
    .filter((line) => line !== '' && line.includes('|started|') === (status === 'started'))
    .map((line) => line.split('|'))
}

t.test('shellcheck finds nothing in the entrypoint, the hooks and the other scripts', async (t) => {
  const scripts = [ENTRYPOINT, JOB_STARTED_HOOK, JOB_COMPLETED_HOOK, join(REPO, 'docker', 'start-runner.sh'), FAKE_RUN]
  const { stdout } = await promisify(execFile)('shellcheck', scripts)
  t.equal(stdout, '')
})

t.test('true results, exact counts and durations, an exporter killed mid-run, output unchanged, linger, no orphans', async (t) => {
  const s = await setup(t, [
    'build|Succeeded|42|1|0',
    'test (ubuntu, 20)|Failed|17|1|0',
    'lint|SucceededWithIssues|3|1|1',
    // Cancelled before its job-started hook ran: no identity but its name.
    'deploy|Canceled|5|0|0',
  ])
  const entrypoint = startEntrypoint(t, s.env)
  await entrypoint.waitForStdout(/fake-runner: job lint waits at the gate\n/)

  const beforeKill = await scrapeUntil(s.port, (m) => jobsTotal(m, RUNNER, 'failure') === 1 && runnerSample(m, 'github_runner_busy', RUNNER) === 1)
  t.equal(jobsTotal(beforeKill, RUNNER, 'success'), 1)

  const exporters = groupMembers(entrypoint.pgid).filter((pid) => commandLine(pid).includes(`${CLI} serve`))
  t.equal(exporters.length, 1, 'one exporter, in the entrypoint process group')
  process.kill(exporters[0] as number, 'SIGKILL')
  await entrypoint.waitForStderr(/the exporter exited \(status 137\); restarting it in 0\.1 s\. The runner is not affected\./)
  await entrypoint.waitForStderr(/runner-metrics: serving .* on http:\/\/127\.0\.0\.1:\d+\/metrics/, 2)
  t.equal(entrypoint.child.exitCode, null, 'the runner and the entrypoint went on')

  await openGate(s.gate)
  await entrypoint.waitForStderr(/the runner exited with status 0; serving metrics for 1 s more/)
  const lingerStarted = Date.now()
  const final = await scrapeUntil(s.port, (m) => jobsTotal(m, RUNNER, 'cancelled') === 1)
  t.same(
    ['success', 'failure', 'cancelled', 'skipped', 'unknown'].map((status) => jobsTotal(final, RUNNER, status)),
    [2, 1, 1, 0, 0],
    'each job counted once, with the result the runner printed',
  )
  t.equal(runnerSample(final, 'github_runner_job_duration_seconds_count', RUNNER), 4)
  t.equal(runnerSample(final, 'github_runner_job_duration_seconds_sum', RUNNER), 42 + 17 + 3 + 5, 'durations from the runner stamps')
  t.same(
    ['5', '15', '30', '60', '+Inf'].map((le) => runnerSample(final, 'github_runner_job_duration_seconds_bucket', RUNNER, `le="${le}",`)),
    [2, 2, 3, 4, 4],
  )
  t.equal(runnerSample(final, 'github_runner_busy', RUNNER), 0)

  const exit = await entrypoint.exited
  t.same(exit, { code: 0, signal: null }, 'the runner status')
  t.ok(Date.now() - lingerStarted >= 900, 'it kept serving for the linger period')
  t.match(entrypoint.stderr(), /runner-metrics: stopped; served \d+ responses/, 'the exporter was stopped gracefully')
  t.same(groupMembers(entrypoint.pgid), [], 'no process left behind')

  t.ok(entrypoint.stdout().equals(readFileSync(s.transcript)), 'stdout is what the runner wrote, byte for byte')
  t.match(entrypoint.stdout().toString('latin1'), /raw bytes: \xff\xfe\x80 tab:\t cr:\r\n/)
  t.same(readFileSync(s.env.RUNNER_OUTPUT_LOG as string), readFileSync(s.transcript), 'and so is the runner output file')

  t.same(
    jobLogLines(s.jobsLog, 'finish').map((fields) => fields.slice(1, 4)),
    [
      ['success', '42', 'octo/app/4001/1/build'],
      ['failure', '17', 'octo/app/4002/1/test'],
      ['success', '3', 'octo/app/4003/1/lint'],
      ['cancelled', '5', 'deploy'],
    ],
    'one finish line per job, with the identity the hooks recorded',
  )
  // The follower may repeat a started line (when a result is recorded after the next job began).
  t.same(
    jobLogLines(s.jobsLog, 'started')
      .filter((fields) => fields[4] !== 'repeated')
      .map((fields) => fields[3]),
    ['octo/app/4001/1/build', 'octo/app/4002/1/test', 'octo/app/4003/1/lint'],
    'one started line per hook run',
  )
  t.equal(readFileSync(s.hookOutput, 'utf8'), '', 'the hooks said nothing: all went well')
})

t.test('SIGTERM reaches the runner, the job in progress ends cancelled, and a second signal ends the linger', async (t) => {
  const s = await setup(t, ['build|Succeeded|42|1|1'], { METRICS_LINGER_SECONDS: '30' })
  const entrypoint = startEntrypoint(t, s.env)
  await entrypoint.waitForStdout(/waits at the gate\n/)
  await scrapeUntil(s.port, (m) => runnerSample(m, 'github_runner_busy', RUNNER) === 1)

  entrypoint.child.kill('SIGTERM')
  await entrypoint.waitForStdout(/fake-runner: got SIGTERM\n/)
  t.match(entrypoint.stdout().toString('utf8'), /Z: Job build completed with result: Canceled\n/)
  t.match(entrypoint.stderr(), /passing the stop signal on to the runner \(SIGTERM\)/)
  await entrypoint.waitForStderr(/the runner exited with status 143; serving metrics for 30 s more/)
  const final = await scrapeUntil(s.port, (m) => jobsTotal(m, RUNNER, 'cancelled') === 1)
  t.equal(jobsTotal(final, RUNNER, 'success'), 0)

  const lingerCut = Date.now()
  entrypoint.child.kill('SIGTERM')
  t.same(await entrypoint.exited, { code: 143, signal: null }, 'exits with the runner status')
  t.ok(Date.now() - lingerCut < 10_000, 'the second signal ended the linger')
  t.same(groupMembers(entrypoint.pgid), [], 'no process left behind')
  t.ok(entrypoint.stdout().equals(readFileSync(s.transcript)))
})

t.test('an exporter that keeps dying is restarted within its budget; the runner never notices', async (t) => {
  const s = await setup(t, ['build|Failed|9|1|1'], {
    RUNNER_METRICS_CLI: join(REPO, 'test', 'fixtures', 'fake-exporter.mjs'),
    FAKE_EXPORTER_EXIT: '1',
    METRICS_RESTART_LIMIT: '2',
    FAKE_RUNNER_EXIT_STATUS: '7',
  })
  const entrypoint = startEntrypoint(t, s.env)
  await entrypoint.waitForStderr(/the exporter died 2 times within 300 s; not restarting it again\. The runner goes on without metrics\./)
  t.equal((entrypoint.stderr().match(/fake exporter: exiting with 1/g) ?? []).length, 3, 'started once, restarted twice')
  await entrypoint.waitForStdout(/waits at the gate\n/)
  await openGate(s.gate)
  t.same(await entrypoint.exited, { code: 7, signal: null })
  t.match(entrypoint.stderr(), /the runner exited with status 7\n/, 'no linger without an exporter')
  t.notMatch(entrypoint.stderr(), /serving metrics for/)
  t.ok(entrypoint.stdout().equals(readFileSync(s.transcript)))
  t.same(groupMembers(entrypoint.pgid), [])
})

t.test('the runner\'s bundled Node runs the exporter; one that refuses its options is not restarted', async (t) => {
  const s = await setup(t, ['build|Succeeded|2|0|1'], {
    RUNNER_NODE: '',
    RUNNER_METRICS_CLI: join(REPO, 'test', 'fixtures', 'fake-exporter.mjs'),
    FAKE_EXPORTER_EXIT: '2',
    METRICS_LINGER_SECONDS: 'soon',
  })
  // externals/ as the runner ships it: the newest Node 20+ is the one to use.
  const used = join(s.dir, 'node-used')
  for (const version of ['16', '20', '24', '24_alpine']) {
    mkdirSync(join(s.dir, 'externals', `node${version}`, 'bin'), { recursive: true })
    const node = join(s.dir, 'externals', `node${version}`, 'bin', 'node')
    writeFileSync(node, `#!/bin/sh\necho node${version} >> '${used}'\nexec '${process.execPath}' "$@"\n`)
    chmodSync(node, 0o755)
  }
  const entrypoint = startEntrypoint(t, s.env)
  await entrypoint.waitForStderr(/the exporter refused its options \(exit status 2\); not restarting it/)
  t.equal(readFileSync(used, 'utf8'), 'node24\n')
  t.match(entrypoint.stderr(), /METRICS_LINGER_SECONDS must be a non-negative number \(got "soon"\); using 15/)
  await openGate(s.gate)
  t.same(await entrypoint.exited, { code: 0, signal: null })
  t.same(groupMembers(entrypoint.pgid), [])
})

t.test('a runner directory that does not exist is reported', async (t) => {
  const s = await setup(t, [], { RUNNER_DIR: '/nonexistent/runner' })
  const entrypoint = startEntrypoint(t, s.env)
  t.same(await entrypoint.exited, { code: 1, signal: null })
  t.match(entrypoint.stderr(), /cannot enter the runner directory \/nonexistent\/runner \(RUNNER_DIR\)/)
  t.same(groupMembers(entrypoint.pgid), [])
})

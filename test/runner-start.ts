// docker/start-runner.sh: registers the runner on its first start, then becomes run.sh.
import { execFile } from 'node:child_process'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { REPO } from './fixtures/runner-image.js'

const START_RUNNER = join(REPO, 'docker', 'start-runner.sh')

/** A runner directory whose config.sh and run.sh only say how they were called. */
function runnerDir(t: Test): string {
  const dir = t.testdir({})
  const record = (name: string): string =>
    `#!/usr/bin/env bash\nprintf '%s\\n' "$@" > ${name}.args\nprintf '%s' "\${RUNNER_TOKEN-<unset>}" > ${name}.token\necho "$$" > ${name}.pid\n`
  writeFileSync(join(dir, 'config.sh'), `${record('config')}touch .runner\n`)
  writeFileSync(join(dir, 'run.sh'), record('run'))
  chmodSync(join(dir, 'config.sh'), 0o755)
  chmodSync(join(dir, 'run.sh'), 0o755)
  return dir
}

function run(dir: string, env: Record<string, string>, args: string[] = []): Promise<{ code: number; stderr: string; pid: number }> {
  return new Promise((resolve) => {
    const child = execFile('bash', [START_RUNNER, ...args], { cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } }, (error, _stdout, stderr) => {
      resolve({ code: error === null ? 0 : (error.code as number), stderr, pid: child.pid as number })
    })
  })
}

const read = (dir: string, file: string): string => readFileSync(join(dir, file), 'utf8')

t.test('registers with the given settings, hides the token from jobs, and becomes run.sh', async (t) => {
  const dir = runnerDir(t)
  const { code, pid } = await run(
    dir,
    { RUNNER_URL: 'https://example.invalid/org', RUNNER_TOKEN: 'secret', RUNNER_NAME: 'r1', RUNNER_TYPE: 'chrome', RUNNER_EPHEMERAL: 'true', RUNNER_GROUP: 'ci' },
    ['--once'],
  )
  t.equal(code, 0)
  t.same(read(dir, 'config.args').split('\n').slice(0, -1), [
    '--unattended', '--replace', '--url', 'https://example.invalid/org', '--token', 'secret',
    '--name', 'r1', '--labels', 'chrome', '--work', '_work', '--runnergroup', 'ci', '--ephemeral',
  ])
  t.equal(read(dir, 'run.args'), '--once\n', 'run.sh gets the entrypoint arguments')
  t.equal(read(dir, 'run.token'), '<unset>', 'the registration token is not in the job environment')
  t.equal(Number(read(dir, 'run.pid')), pid, 'exec: run.sh is the process the entrypoint signals')
})

t.test('a registered runner starts without registering again', async (t) => {
  const dir = runnerDir(t)
  writeFileSync(join(dir, '.runner'), '{}')
  const { code } = await run(dir, {})
  t.equal(code, 0)
  t.equal(read(dir, 'run.args'), '\n', 'run.sh, with no arguments')
  t.throws(() => read(dir, 'config.args'), { code: 'ENOENT' })
})

t.test('an unregistered runner without URL and token says what it needs', async (t) => {
  const dir = runnerDir(t)
  const { code, stderr } = await run(dir, { RUNNER_URL: 'https://example.invalid/org' })
  t.equal(code, 1)
  t.equal(stderr, 'start-runner: this runner is not registered yet; set RUNNER_URL and RUNNER_TOKEN (a registration token)\n')
  t.throws(() => read(dir, 'run.args'), { code: 'ENOENT' })
})

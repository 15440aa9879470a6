import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { VERSION } from '../src/version.js'
import { exchange, freePort, GET_METRICS } from './fixtures/net.js'

const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url))

/** Runs the real CLI as a child process (through the same TypeScript loader as the tests). */
function start(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [...process.execArgv, cli, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  let stdout = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>
  const startLine = new Promise<string>((resolve, reject) => {
    child.stderr.on('data', () => {
      const line = stderr.split('\n').find((candidate) => candidate.includes(': serving '))
      if (line !== undefined) resolve(line)
    })
    void exited.then(() => reject(new Error(`exited before serving: ${stderr}`)))
  })
  startLine.catch(() => {})
  return { child, exited, startLine, output: () => ({ stderr, stdout }) }
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} stops the real process: exit 0 within 1 s`, async (t) => {
    const dir = t.testdir({ 'jobs.log': '1700000000|success|1|a\n' })
    const port = await freePort()
    const run = start(['serve', '--port', String(port), '--host', '127.0.0.1', '--metrics-file', join(dir, 'm.prom'), '--jobs-log', join(dir, 'jobs.log')])
    t.teardown(() => run.child.kill('SIGKILL'))
    t.match(await run.startLine, /^runner-metrics: serving .*m\.prom on http:\/\/127\.0\.0\.1:\d+\/metrics \(collector every 30 s\)$/)
    t.match(await exchange(port, GET_METRICS), /^HTTP\/1\.1 200 OK\r\n/)
    const killedAt = performance.now()
    run.child.kill(signal)
    const [code] = await run.exited
    const took = performance.now() - killedAt
    t.equal(code, 0)
    t.ok(took < 1000, `exited in ${took.toFixed(0)} ms`)
    t.match(run.output().stderr, /runner-metrics: stopped; served 1 responses \(1 200 OK\)\n$/)
  })
}

t.test('invalid options: exit 2 and one line on stderr', async (t) => {
  const run = start(['--port', '0'])
  const [code] = await run.exited
  t.equal(code, 2)
  t.equal(run.output().stderr, 'runner-metrics: --port must be a port number from 1 to 65535 (got "0")\n')
})

t.test('--version prints the version on stdout', async (t) => {
  const run = start(['--version'])
  const [code] = await run.exited
  t.equal(code, 0)
  t.equal(run.output().stdout, `${VERSION}\n`)
})

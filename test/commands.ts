import { once } from 'node:events'
import { existsSync, mkdirSync, readFileSync, watch, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { main, type Io } from '../src/commands.js'
import { HELP } from '../src/config.js'
import { VERSION } from '../src/version.js'
import { exchange, freePort, GET_METRICS } from './fixtures/net.js'
import { parseSamples } from './fixtures/samples.js'

function io(extra: Partial<Io> = {}) {
  const logs: string[] = []
  const out: string[] = []
  let stop!: (signal: string) => void
  const stopped = new Promise<string>((resolve) => (stop = resolve))
  let onLog: ((line: string) => void) | undefined
  const value: Io = {
    log: (line) => {
      logs.push(line)
      onLog?.(line)
    },
    stdout: (text) => out.push(text),
    waitForStop: () => stopped,
    ...extra,
  }
  const started = new Promise<string>((resolve) => (onLog = (line) => line.startsWith('serving ') && resolve(line)))
  return { io: value, logs, out, stop: () => stop('SIGTERM'), started }
}

t.test('--help and --version print and exit 0', async (t) => {
  const help = io()
  t.equal(await main(['--help'], {}, help.io), 0)
  t.same(help.out, [HELP])
  const version = io()
  t.equal(await main(['collect', '--version'], {}, version.io), 0)
  t.same(version.out, [`${VERSION}\n`])
})

t.test('invalid options exit 2 with one line naming the option, before anything starts', async (t) => {
  for (const argv of [['--port', '0'], ['--port', '70000'], ['--interval', 'abc'], ['--bogus']]) {
    const run = io()
    t.equal(await main(argv, {}, run.io), 2, argv.join(' '))
    t.equal(run.logs.length, 1)
    t.match(run.logs[0], argv[0] === '--bogus' ? /^unknown option "--bogus"/ : new RegExp(`^${argv[0]} must be`))
  }
})

t.test('an unwritable metrics directory exits 2, unless the collector is off', async (t) => {
  const dir = t.testdir({ 'a-file': '' })
  const metricsFile = join(dir, 'a-file', 'metrics.prom')
  const run = io()
  t.equal(await main(['--metrics-file', metricsFile], {}, run.io), 2)
  t.match(run.logs, [/^--metrics-file must be in a writable directory: cannot write to .*a-file \(ENOTDIR\)$/])
  const collect = io()
  t.equal(await main(['collect', '--metrics-file', metricsFile], { METRICS_COLLECTOR: 'off' }, collect.io), 2, 'collect always writes')

  const port = await freePort()
  const serving = io()
  const exit = main(['--no-collector', '--metrics-file', metricsFile, '--port', String(port), '--host', '127.0.0.1'], {}, serving.io)
  t.equal(await serving.started, `serving ${metricsFile} on http://127.0.0.1:${port}/metrics (collector off)`)
  t.match(await exchange(port, GET_METRICS), /^HTTP\/1\.1 503 /)
  serving.stop()
  t.equal(await exit, 0)
})

t.test('a port in use exits 1 and says so', async (t) => {
  const blocker = createServer().listen(0, '127.0.0.1')
  await once(blocker, 'listening')
  t.teardown(() => blocker.close())
  const { port } = blocker.address() as { port: number }
  const dir = t.testdir({})
  const run = io()
  t.equal(await main(['--port', String(port), '--host', '127.0.0.1', '--metrics-file', join(dir, 'm.prom')], {}, run.io), 1)
  t.same(run.logs, [
    `port ${port} is already in use (another exporter? 9091 is also the Prometheus Pushgateway's default); choose another with --port or METRICS_PORT`,
  ])
  t.notOk(existsSync(join(dir, 'm.prom')), 'nothing was collected')
})

t.test('another listen failure exits 1 with the reason', async (t) => {
  const dir = t.testdir({})
  const run = io()
  // TEST-NET-3: an address no interface here has
  t.equal(await main(['--port', '9', '--host', '203.0.113.7', '--metrics-file', join(dir, 'm.prom')], {}, run.io), 1)
  t.match(run.logs, [/^cannot listen on 203\.0\.113\.7:9: .*EADDRNOTAVAIL/])
})

t.test('serve: the first scrape has data; SIGTERM stops it, removes only our temp files, reports what it served', async (t) => {
  const dir = t.testdir({ 'jobs.log': '1700000000|success|42|a\n', 'unrelated.tmp': '' })
  const port = await freePort()
  const run = io()
  const metricsFile = join(dir, 'metrics.prom')
  const exit = main(['serve', '--port', String(port), '--host', '127.0.0.1', '--interval', '60'], {
    METRICS_FILE: metricsFile,
    JOBS_LOG: join(dir, 'jobs.log'),
    RUNNER_NAME: 'cmd-bürö-€',
  }, run.io)
  t.equal(await run.started, `serving ${metricsFile} on http://127.0.0.1:${port}/metrics (collector every 60 s)`)
  const response = await exchange(port, GET_METRICS)
  const body = response.slice(response.indexOf('\r\n\r\n') + 4)
  t.equal(parseSamples(body).get('github_runner_jobs_total{runner_name="cmd-bürö-€",runner_type="standard",status="success"}'), 1)
  const length = Number(/\r\nContent-Length: (\d+)\r\n/.exec(response)?.[1])
  t.equal(length, Buffer.byteLength(body), 'Content-Length counts the bytes of a non-ASCII runner name')
  t.not(length, body.length, 'not its characters')
  await exchange(port, 'GET /nope HTTP/1.1\r\n\r\n')

  const leftover = join(dir, `.metrics.prom.${process.pid}.9.9.tmp`)
  writeFileSync(leftover, 'half a write')
  run.stop()
  t.equal(await exit, 0)
  t.notOk(existsSync(leftover), 'our temp file is removed')
  t.ok(existsSync(join(dir, 'unrelated.tmp')), 'nothing else is')
  t.ok(existsSync(metricsFile), 'the metrics file stays')
  t.equal(run.logs.at(-1), 'stopped; served 2 responses (1 200 OK)')
})

t.test('serve on all interfaces and on an IPv6 address names them in the start line', async (t) => {
  const dir = t.testdir({})
  for (const [host, shown] of [[undefined, '*'], ['::1', '[::1]']] as const) {
    const port = await freePort()
    const run = io()
    const argv = ['--no-collector', '--port', String(port), '--metrics-file', join(dir, 'm.prom'), ...(host ? ['--host', host] : [])]
    const exit = main(argv, {}, run.io)
    t.equal(await run.started, `serving ${join(dir, 'm.prom')} on http://${shown}:${port}/metrics (collector off)`)
    run.stop()
    t.equal(await exit, 0)
  }
})

t.test('a collector that cannot start stops the endpoint and exits 1', async (t) => {
  const dir = t.testdir({})
  const port = await freePort()
  const run = io({ workerUrl: new URL('./fixtures/worker-fails-to-start.mjs', import.meta.url) })
  t.equal(await main(['--port', String(port), '--host', '127.0.0.1', '--metrics-file', join(dir, 'm.prom')], {}, run.io), 1)
  t.same(run.logs, ['collector worker failed to start: cannot start on purpose'])
  const again = createServer().listen(port, '127.0.0.1')
  await once(again, 'listening')
  again.close()
  t.pass('the port was released')
})

t.test('collect writes the file once and exits 0; failures exit 1', async (t) => {
  const dir = t.testdir({ 'jobs.log': '1700000000|failed|3|a\n' })
  const env = { JOBS_LOG: join(dir, 'jobs.log'), METRICS_FILE: join(dir, 'metrics.prom'), RUNNER_NAME: 'c' }
  const ok = io()
  t.equal(await main(['collect'], env, ok.io), 0)
  t.equal(parseSamples(readFileSync(env.METRICS_FILE, 'utf8')).get('github_runner_jobs_total{runner_name="c",runner_type="standard",status="failure"}'), 1)
  t.same(ok.logs, [])

  mkdirSync(join(dir, 'is-a-dir.prom'))
  const failed = io()
  t.equal(await main(['collect', '--metrics-file', join(dir, 'is-a-dir.prom')], env, failed.io), 1)
  t.match(failed.logs, [/cannot write .*is-a-dir\.prom/, /^collection failed; .*is-a-dir\.prom was not replaced$/])

  const badLog = io()
  t.equal(await main(['collect', '--jobs-log', dir], env, badLog.io), 1)
  t.match(badLog.logs, [/cannot read job log/, /^wrote .*metrics\.prom, but the job log could not be read$/])
})

t.test('serve --runner-output records the runner\'s true results and collects at once', async (t) => {
  const dir = t.testdir({})
  const port = await freePort()
  const run = io()
  const env = { JOBS_LOG: join(dir, 'jobs.log'), METRICS_FILE: join(dir, 'metrics.prom'), RUNNER_NAME: 'f', RUNNER_OUTPUT_LOG: join(dir, 'runner.out') }
  const exit = main(['--port', String(port), '--host', '127.0.0.1', '--interval', '3600'], env, run.io)
  await run.started
  const watcher = watch(dir)
  t.teardown(() => watcher.close())
  const collected = new Promise<void>((resolve) => watcher.on('change', (_type, name) => name === 'metrics.prom' && resolve()))
  writeFileSync(env.JOBS_LOG, '1736937000|started|0|o/r/1/1/build\n')
  writeFileSync(env.RUNNER_OUTPUT_LOG, '2025-01-15 10:30:00Z: Running job: build\n2025-01-15 10:30:42Z: Job build completed with result: Failed\n')
  await collected
  const samples = parseSamples(readFileSync(env.METRICS_FILE, 'utf8'))
  t.equal(samples.get('github_runner_jobs_total{runner_name="f",runner_type="standard",status="failure"}'), 1, 'an hour before the next interval')
  t.equal(samples.get('github_runner_job_duration_seconds_sum{runner_name="f",runner_type="standard"}'), 42)
  run.stop()
  t.equal(await exit, 0)
})

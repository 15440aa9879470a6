// Out of file descriptors: the real CLI under `prlimit --nofile`. Every accept fails while
// none is free; the endpoint says so once, keeps running, and serves again as soon as one is.
import { execFileSync } from 'node:child_process'
import { closeSync, openSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { stopChild, waitForStderrLine } from './fixtures/exporter.js'
import { fdLimit, openConnections, whenClosed } from './fixtures/hostile-clients.js'
import { startCli } from './fixtures/hostile-processes.js'
import { get } from './fixtures/http-client.js'
import { readResponse } from './fixtures/hostile-wire.mjs'

const FD_LIMIT = 64
const ACCEPT_FAILED = /^runner-metrics: cannot accept a connection \(EMFILE\)/

/** The status of one scrape, or 0 when the connection closed without an answer. */
async function scrape(port: number): Promise<number> {
  const response = readResponse((await get(port)).data)
  return response.ok ? response.status : 0
}

/** Scrapes until one is a 200; resolves with how long that took. */
async function untilServed(port: number, withinMs: number): Promise<number> {
  const started = performance.now()
  while ((await scrape(port)) !== 200) {
    if (performance.now() - started > withinMs) throw new Error(`not served again within ${withinMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return performance.now() - started
}

t.test(`the real CLI with ${FD_LIMIT} descriptors: logs once, keeps running, serves again once they are free`, { timeout: 20000 }, async (t) => {
  const dir = t.testdir()
  const { child, port, stderr } = await startCli(
    t,
    ['--runner-name', 'hostile-fds', '--metrics-file', join(dir, 'metrics.prom'), '--jobs-log', join(dir, 'jobs.log')],
    ['prlimit', `--nofile=${FD_LIMIT}:${FD_LIMIT}`],
  )
  const acceptFailures = (): number => stderr().split('\n').filter((line) => ACCEPT_FAILED.test(line)).length
  t.equal(await scrape(port), 200, 'serving')
  const free = FD_LIMIT - readdirSync(`/proc/${child.pid}/fd`).length

  // Episode 1: more idle connections than free descriptors; then the clients go away.
  const loggedOnce = waitForStderrLine(child, ACCEPT_FAILED)
  const idle = await openConnections(t, { port }, free + 20, free + 20)
  await loggedOnce
  const failedScrape = await scrape(port)
  t.equal(failedScrape, 0, 'no descriptor for a scrape: its connection is closed unanswered')
  t.equal(child.exitCode, null, 'still running')
  idle.forEach((socket) => socket.destroy())
  await Promise.all(idle.map(whenClosed))
  const recoveredMs = await untilServed(port, 2000)
  t.ok(recoveredMs < 1000, `served again ${Math.round(recoveredMs)} ms after the clients left`)
  t.equal(acceptFailures(), 1, `every failed accept of the episode in one line`)

  // Back at once, and this time the clients stay: the 5 s head deadline frees their
  // descriptors. Still one line: an episode ends only after 5 s with a descriptor free.
  const stayed = await openConnections(t, { port }, free + 20, free + 20)
  const exhaustedAt = performance.now()
  t.equal(await scrape(port), 0, 'out of descriptors again')
  const freedMs = await untilServed(port, 8000)
  t.ok(freedMs < 6500, `served again ${Math.round(performance.now() - exhaustedAt)} ms later, once the head deadline closed the idle ones`)
  t.equal(acceptFailures(), 1, 'and still that one line')
  t.equal(child.exitCode, null, 'still running')
  stayed.forEach((socket) => socket.destroy())

  t.same(await stopChild(child), { code: 0, signal: null }, 'and stops cleanly')
  t.match(stderr(), /stopped; served \d+ responses/)
})

t.test('descriptorShortage: EMFILE when this process has none free, ENFILE for the system, else nothing', async (t) => {
  const { descriptorShortage } = await import('../src/server/descriptors.js')
  t.equal(descriptorShortage(), undefined, 'one is free')
  const setSoftLimit = (limit: number | string): Buffer => execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${limit}:`])
  const original = fdLimit()
  t.teardown(() => setSoftLimit(original))
  // Room for 16 more, then take them all: running prlimit again needs none of them back.
  setSoftLimit(readdirSync('/proc/self/fd').length + 16)
  const taken: number[] = []
  t.teardown(() => taken.forEach((fd) => closeSync(fd)))
  try {
    for (;;) taken.push(openSync('/dev/null', 'r'))
  } catch (error) {
    t.equal((error as NodeJS.ErrnoException).code, 'EMFILE', `out of descriptors after ${taken.length} more`)
  }
  t.equal(descriptorShortage(), 'EMFILE')
  closeSync(taken.pop()!)
  t.equal(descriptorShortage(), undefined, 'one free again')

  const failing = (code: string) =>
    t.mockImport<typeof import('../src/server/descriptors.js')>('../src/server/descriptors.js', {
      'node:fs': {
        closeSync: () => {},
        openSync: () => {
          throw Object.assign(new Error(`open ${code}`), { code })
        },
      },
    })
  t.equal((await failing('ENFILE')).descriptorShortage(), 'ENFILE')
  t.equal((await failing('ENOENT')).descriptorShortage(), undefined, 'no /dev/null says nothing about descriptors')
})

t.test('the endpoint checks for a free descriptor: one line an episode, over after 5 free checks', async (t) => {
  // What the checks find, one each in turn; the last one found persists until the next script.
  let script: Array<'EMFILE' | 'ENFILE' | undefined> = []
  let found: 'EMFILE' | 'ENFILE' | undefined
  let scriptDone: () => void = () => {}
  const { createEndpoint } = await t.mockImport<typeof import('../src/server/endpoint.js')>('../src/server/endpoint.js', {
    '../src/server/descriptors.js': {
      descriptorShortage: () => {
        if (script.length > 0) {
          found = script.shift()
          if (script.length === 0) scriptDone()
        }
        return found
      },
    },
  })
  const check = (next: typeof script): Promise<void> =>
    new Promise((resolve) => {
      script = next
      scriptDone = resolve
    })
  const logs: string[] = []
  const endpoint = createEndpoint({
    metricsFile: join(t.testdir({ 'metrics.prom': 'a 1\n' }), 'metrics.prom'),
    maxConnections: 8,
    headTimeoutMs: 5000,
    maxHeadBytes: 8192,
    lingerMs: 5000,
    maxFileBytes: 1024,
    descriptorCheckMs: 2,
    log: (message) => logs.push(message),
  })
  t.teardown(() => endpoint.close(0))
  const { port } = await endpoint.listen(0, '127.0.0.1')
  const line = (code: string): string =>
    `cannot accept a connection (${code}): no file descriptor is free, so new connections are closed unanswered; ` +
    'raise the open file limit (ulimit -n) or lower --max-connections'

  await check(['EMFILE', 'EMFILE', undefined, undefined, undefined, undefined, 'EMFILE'])
  t.same(logs, [line('EMFILE')], 'logged once; 4 free checks in a row do not end the episode')
  t.equal(await scrape(port), 200, 'a connection accepted meanwhile does not end it either')
  t.same(logs, [line('EMFILE')])
  await check([undefined, undefined, undefined, undefined, undefined])
  t.same(logs, [line('EMFILE')], 'free again: nothing to say')
  await check(['ENFILE'])
  t.same(logs, [line('EMFILE'), line('ENFILE')], 'after 5 free checks, a new episode is a new line')
  await endpoint.close(0)
  script = ['EMFILE']
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(script, ['EMFILE'], 'no check after close()')
})

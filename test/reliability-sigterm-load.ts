// SIGTERM while scrapes are in flight, against the real CLI: every response that had begun
// arrives whole (a 200 with its full body), the process exits 0 within 1 s, and what the server
// says it served is exactly what the clients got.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { incompleteBody } from './fixtures/reliability-body.js'
import { startCli, type Cli } from './fixtures/exporter.js'

interface Scrape {
  /** Bytes received. */
  bytes: Buffer
  /** The first byte had arrived when SIGTERM was sent. */
  startedBeforeSignal: boolean
  /** Still receiving when SIGTERM was sent. */
  inFlightAtSignal: boolean
  error: string | undefined
}

/**
 * `clients` loops, each scraping over and over (a new connection per scrape, reading at full
 * speed), until its connection fails after `signal()` was called. `signal` is called once at
 * least `inFlight` responses have begun and not ended.
 */
async function scrapeThroughSigterm(cli: Cli, clients: number, inFlight: number, signal: () => void) {
  const scrapes: Scrape[] = []
  const receiving = new Set<Scrape>()
  let signalled = false
  let signalledAt = 0
  const maybeSignal = (): void => {
    if (signalled || receiving.size < inFlight || scrapes.length < clients * 2) return
    signalled = true
    for (const scrape of scrapes) scrape.startedBeforeSignal = scrape.bytes.length > 0
    for (const scrape of receiving) scrape.inFlightAtSignal = true
    signalledAt = performance.now()
    signal()
  }

  const one = (): Promise<Scrape> =>
    new Promise((resolve) => {
      const scrape: Scrape = { bytes: Buffer.alloc(0), startedBeforeSignal: false, inFlightAtSignal: false, error: undefined }
      scrapes.push(scrape)
      const chunks: Buffer[] = []
      const socket = connect({ port: cli.port, host: '127.0.0.1' })
      socket.on('error', (error: NodeJS.ErrnoException) => (scrape.error = error.code ?? error.message))
      socket.on('data', (chunk: Buffer) => {
        if (chunks.push(chunk) === 1) receiving.add(scrape)
        maybeSignal()
      })
      socket.on('close', () => {
        receiving.delete(scrape)
        scrape.bytes = Buffer.concat(chunks)
        resolve(scrape)
      })
      socket.end('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
    })

  const loop = async (): Promise<void> => {
    for (;;) {
      const scrape = await one()
      if (signalled && (scrape.error !== undefined || scrape.bytes.length === 0)) return
    }
  }
  const exit = cli.exited
  await Promise.all(Array.from({ length: clients }, loop))
  const { code } = await exit
  return { scrapes, code, exitMs: performance.now() - signalledAt }
}

/** Splits a response; undefined when the bytes are not one whole 200 with its full body. */
function wholeBody(bytes: Buffer): Buffer | undefined {
  const end = bytes.indexOf('\r\n\r\n')
  if (end === -1 || !bytes.subarray(0, 17).equals(Buffer.from('HTTP/1.1 200 OK\r\n'))) return undefined
  const length = /\r\nContent-Length: (\d+)\r\n/.exec(bytes.toString('latin1', 0, end))
  const body = bytes.subarray(end + 4)
  return length !== null && body.length === Number(length[1]) ? body : undefined
}

async function expectGracefulStop(t: Test, cli: Cli, clients: number, inFlight: number, checkBody: (body: Buffer) => boolean) {
  let signalledAt = 0
  const { scrapes, code } = await scrapeThroughSigterm(cli, clients, inFlight, () => {
    signalledAt = performance.now()
    process.kill(cli.pid, 'SIGTERM')
  })
  const exitedAt = performance.now()
  const answered = scrapes.filter((scrape) => scrape.bytes.length > 0)
  const broken = answered.filter((scrape) => {
    const body = wholeBody(scrape.bytes)
    return body === undefined || !checkBody(body)
  })
  const inFlightAtSignal = scrapes.filter((scrape) => scrape.inFlightAtSignal)
  const afterSignal = answered.filter((scrape) => !scrape.startedBeforeSignal)
  t.equal(code, 0, 'exit code 0')
  t.ok(exitedAt - signalledAt < 1000, `exited ${(exitedAt - signalledAt).toFixed(0)} ms after SIGTERM (< 1 s)`)
  t.ok(inFlightAtSignal.length >= inFlight, `${inFlightAtSignal.length} responses were arriving when SIGTERM was sent`)
  t.equal(broken.length, 0, `every one of the ${answered.length} responses that began is a whole 200 (${afterSignal.length} of them began after SIGTERM)`)
  t.ok(inFlightAtSignal.every((scrape) => !broken.includes(scrape)), 'including those that were arriving when SIGTERM came')
  const unanswered = scrapes.filter((scrape) => scrape.bytes.length === 0).map((scrape) => scrape.error ?? 'closed')
  t.same(
    unanswered.filter((reason) => !/^(closed|ECONNREFUSED|ECONNRESET|EPIPE)$/.test(reason)),
    [],
    `the other ${unanswered.length} were refused or closed before any byte of an answer`,
  )
  const stopped = /runner-metrics: stopped; served (\d+) responses \((\d+) 200 OK\)\n/.exec(cli.stderr())
  t.ok(stopped, 'the stop line')
  t.equal(Number(stopped?.[2]), answered.length, 'the server served exactly the responses the clients got')
}

t.test('SIGTERM while 1 MiB responses are in flight: each completes, exit 0 within 1 s', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'metrics.prom')
  // A valid exposition of 1 MiB, so responses take long enough to be caught half-way.
  const line = (i: number): string => `runner_metrics_padding{series="${String(i).padStart(8, '0')}"} ${i}\n`
  const lines = ['# HELP runner_metrics_padding Padding.\n', '# TYPE runner_metrics_padding gauge\n']
  for (let i = 0, size = 0; size < 1024 * 1024; i++) size += lines[lines.push(line(i)) - 1]!.length
  const content = Buffer.from(lines.join(''))
  writeFileSync(file, content)
  const cli = await startCli(t, ['--no-collector', '--metrics-file', file])
  await expectGracefulStop(t, cli, 32, 8, (body) => body.equals(content))
})

t.test('SIGTERM under load with the collector writing every 50 ms: whole answers, the worker stopped, no temp file left', async (t) => {
  const dir = t.testdir({ 'jobs.log': '1700000000|success|5|a\n'.repeat(1000) })
  const file = join(dir, 'metrics.prom')
  const cli = await startCli(t, ['--metrics-file', file, '--jobs-log', join(dir, 'jobs.log'), '--interval', '0.05'])
  await expectGracefulStop(t, cli, 100, 1, (body) => incompleteBody(body.toString()) === undefined)
  t.same(readdirSync(dir).sort(), ['jobs.log', 'metrics.prom'], 'only the log and the metrics file are left')
  t.equal(incompleteBody(readFileSync(file, 'utf8')), undefined, 'and the metrics file is whole')
})

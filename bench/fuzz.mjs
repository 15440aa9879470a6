// `make soak`'s fuzz run: the request fuzzer of test/fuzz-request.ts, for minutes instead of
// seconds, against the real CLI (`node dist/cli.js serve`, its collector rewriting the metrics
// file every second) with a scraper beside it. Every input must get the answer the parser gives
// the whole input (the exact bytes; for /metrics, whose content changes, a well-formed 200 of
// metrics text), or a clean close; every scrape must be a complete 200 in under 100 ms.
// Prints a table, writes bench/results/fuzz.json, exits 1 on any failure.
//
// Environment: FUZZ_SECONDS (120), FUZZ_SEED (random; printed, replays a run),
// FUZZ_CONCURRENCY (16 clients at once), FUZZ_RESULTS (output path), BENCH_CLI (dist/cli.js).

import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { gunzipSync } from 'node:zlib'
import { describeMachine } from './machine.mjs'
import { memory } from './overhead.mjs'
import { onFreePort, startOurs } from './peers.mjs'
import { makeTempDir, removeTempDirs, stopAll } from './processes.mjs'
import { summarize } from './stats.mjs'
import { createRandom, describeInput, expectedAnswer, fuzzInput, sendInput } from '../test/fixtures/hostile-fuzz.mjs'
import { readResponse } from '../test/fixtures/hostile-wire.mjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const SCRAPER = join(root, 'test/fixtures/hostile-scraper.mjs')
const SCRAPE_BUDGET_MS = 100
// The CLI's head deadline: a client that waits with an incomplete head is cut after it.
const HEAD_TIMEOUT_MS = 5000
// Clients that wait for the deadline hold a connection 5 s: at most this many at once.
const MAX_WAITING = 64

function readOptions(env) {
  const number = (name, fallback) => {
    if (env[name] === undefined || env[name] === '') return fallback
    const value = Number(env[name])
    if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number (got "${env[name]}")`)
    return value
  }
  return {
    seconds: number('FUZZ_SECONDS', 120),
    seed: number('FUZZ_SEED', Math.floor(Math.random() * 2 ** 31)),
    concurrency: Math.max(1, number('FUZZ_CONCURRENCY', 16)),
    results: resolve(env.FUZZ_RESULTS ?? join(root, 'bench/results/fuzz.json')),
    cli: resolve(env.BENCH_CLI ?? join(root, 'dist/cli.js')),
  }
}

/** What an answer must be: the exact bytes, except for /metrics (its content changes). */
function problemWith(result, expected, replies) {
  if (result.error !== undefined) return result.error
  if (!result.ended) return 'no FIN'
  if (expected.status === 0) return result.data.length === 0 ? undefined : 'an answer where none was due'
  const response = readResponse(result.data, { headOnly: expected.headOnly })
  if (!response.ok) return response.problem
  if (response.status !== expected.status) return `${response.status} instead of ${expected.status}`
  if (expected.route !== 'metrics') {
    const reply = expected.route === undefined ? replies.errors[expected.status] : replies.routes[expected.route].bytes(expected.headOnly)
    return result.data.equals(reply) ? undefined : 'not the exact bytes'
  }
  if (response.headers['content-type'] !== 'text/plain; version=0.0.4; charset=utf-8') return 'not metrics text'
  if ((response.headers['content-encoding'] === 'gzip') !== expected.gzip) return 'gzip not as asked'
  if (expected.headOnly) return undefined
  const text = (expected.gzip ? gunzipSync(response.body) : response.body).toString('utf8')
  return text.startsWith('# HELP github_runner_info ') && text.endsWith('\n') ? undefined : 'not the metrics file'
}

/** One exchange: connect, send the input as the fuzzer says, read until the server closes. */
function exchange(port, input) {
  return new Promise((resolvePromise) => {
    const chunks = []
    let ended = false
    let error
    const socket = connect({ port, host: '127.0.0.1', noDelay: true })
    // Far past the head deadline: only a server that forgot the connection gets here.
    const giveUp = setTimeout(() => {
      error = 'no close within 10 s'
      socket.destroy()
    }, HEAD_TIMEOUT_MS * 2)
    socket.on('connect', () => void sendInput(socket, input))
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('end', () => {
      ended = true
    })
    socket.on('error', (e) => {
      error = e.code ?? e.message
    })
    socket.on('close', () => {
      clearTimeout(giveUp)
      resolvePromise({ data: Buffer.concat(chunks), ended, error })
    })
  })
}

function startScraper(port) {
  const child = spawn(process.execPath, [SCRAPER, String(port), '100', 'gzip'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const scrapes = []
  const lines = createInterface({ input: child.stdout })
  lines.on('line', (line) => scrapes.push(JSON.parse(line)))
  const closed = new Promise((resolvePromise) => lines.once('close', resolvePromise))
  return {
    async stop() {
      child.stdin.end()
      await closed
      return scrapes
    },
  }
}

function fdCount(pid) {
  return readdirSync(`/proc/${pid}/fd`).length
}

async function main() {
  const options = readOptions(process.env)
  if (!existsSync(options.cli)) throw new Error(`${options.cli} is missing: run \`npm run build\` first`)
  const { findHeadEnd, parseRequest, parseRequestLine } = await import(pathToFileURL(join(dirname(options.cli), 'server/request.js')).href)
  const responses = await import(pathToFileURL(join(dirname(options.cli), 'server/response.js')).href)
  const parser = { findHeadEnd, parseRequest, parseRequestLine }
  const replies = {
    routes: { index: responses.INDEX, healthz: responses.HEALTHZ, 'not-found': responses.NOT_FOUND },
    errors: {
      400: responses.BAD_REQUEST.bytes(false, false),
      405: responses.METHOD_NOT_ALLOWED.bytes(false, false),
      431: responses.HEADERS_TOO_LARGE.bytes(false, false),
    },
  }

  const dir = makeTempDir('runner-metrics-fuzz-')
  const ours = await onFreePort((port) =>
    startOurs({ cli: options.cli, port, metricsFile: join(dir, 'metrics.prom'), jobsLog: join(dir, 'jobs.log'), interval: 1 }),
  )
  const before = { memory: memory(ours.pid), fds: fdCount(ours.pid) }
  const scraper = startScraper(ours.port)
  console.log(`fuzzing ${ours.url} for ${options.seconds} s, seed ${options.seed}, ${options.concurrency} clients at once`)

  const random = createRandom(options.seed)
  const until = performance.now() + options.seconds * 1000
  const statuses = {}
  const problems = []
  let inputs = 0
  let waiting = 0
  const waiters = new Set()
  const record = (input, expected, result) => {
    inputs++
    statuses[expected.status] = (statuses[expected.status] ?? 0) + 1
    const problem = problemWith(result, expected, replies)
    if (problem !== undefined && problems.length < 1000) problems.push(`${problem}: ${describeInput(input)}`)
  }
  const lane = async () => {
    while (performance.now() < until) {
      const input = fuzzInput(random)
      // A client that waits is cut only at the deadline: run it aside instead of holding a lane.
      if (!input.ends && waiting >= MAX_WAITING) input.ends = true
      const expected = expectedAnswer(input.bytes, input.ends, parser)
      const done = exchange(ours.port, input).then((result) => record(input, expected, result))
      if (input.ends) await done
      else {
        waiting++
        const waiter = done.finally(() => {
          waiting--
          waiters.delete(waiter)
        })
        waiters.add(waiter)
      }
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, lane))
  await Promise.all(waiters)

  const scrapes = await scraper.stop()
  const after = { memory: memory(ours.pid), fds: fdCount(ours.pid) }
  const stopped = await ours.stop()
  const failedScrapes = scrapes.filter((s) => s.status !== 200 || !s.complete || s.ms >= SCRAPE_BUDGET_MS)
  const ok = problems.length === 0 && failedScrapes.length === 0 && stopped.exit.code === 0

  const report = {
    ok,
    seed: options.seed,
    seconds: options.seconds,
    concurrency: options.concurrency,
    inputs,
    inputsPerSecond: Math.round(inputs / options.seconds),
    expectedStatuses: statuses,
    problems: problems.slice(0, 20),
    problemCount: problems.length,
    scrapes: { count: scrapes.length, failed: failedScrapes.length, latencyMs: summarize(scrapes.map((s) => s.ms)), firstFailures: failedScrapes.slice(0, 5) },
    exporter: { rssMb: { before: before.memory.rss, after: after.memory.rss, peak: after.memory.hwm }, fds: { before: before.fds, after: after.fds }, exit: stopped.exit, stderr: stopped.stderr },
    machine: describeMachine({}),
    finishedAt: new Date().toISOString(),
  }
  mkdirSync(dirname(options.results), { recursive: true })
  writeFileSync(`${options.results}.tmp`, `${JSON.stringify(report, null, 2)}\n`)
  renameSync(`${options.results}.tmp`, options.results)

  const latency = report.scrapes.latencyMs
  const rows = [
    ['inputs', `${inputs} (${report.inputsPerSecond}/s), seed ${options.seed}`],
    ['expected answers', Object.entries(statuses).map(([status, count]) => `${status === '0' ? 'none' : status}: ${count}`).join(', ')],
    ['wrong answers', String(problems.length)],
    ['scrapes', `${scrapes.length}, ${failedScrapes.length} failed or >= ${SCRAPE_BUDGET_MS} ms`],
    ['scrape latency', `p50 ${latency.p50} ms, p99 ${latency.p99} ms, max ${latency.max} ms`],
    ['exporter RSS', `${before.memory.rss} MB -> ${after.memory.rss} MB (peak ${after.memory.hwm} MB)`],
    ['exporter fds', `${before.fds} -> ${after.fds}`],
    ['exporter exit', `${stopped.exit.code ?? stopped.exit.signal}; ${stopped.stderr.split('\n').length} stderr lines`],
  ]
  const width = Math.max(...rows.map(([name]) => name.length))
  for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value}`)
  for (const problem of report.problems) console.log(`  ${problem}`)
  console.log(`${ok ? 'PASS' : 'FAIL'}: results in ${options.results}`)
  return ok ? 0 : 1
}

let code = 1
try {
  code = await main()
} catch (error) {
  console.error(`fuzz: ${error.message}`)
} finally {
  await stopAll()
  removeTempDirs()
}
process.exitCode = code

// `make soak`: the real exporter (node dist/cli.js serve) under a steady load for a long time.
// 100 scrapes/s (half of them gzip, as Prometheus asks), a collection every second, a job
// appended to the log every 100 ms. Every scrape must be a whole 200; RSS and open descriptors
// are sampled from /proc and their trend reported (least squares, per minute); at the end every
// job written must be counted exactly once. Prints a table, writes a JSON result, exits 1 on a
// failed scrape, a miscounted job, or an exporter that died or stopped badly.
//
// Environment: SOAK_SECONDS (600), SOAK_RATE (scrapes/s, 100), SOAK_JOB_MS (100),
// SOAK_INTERVAL (collector seconds, 1), SOAK_SAMPLE_SECONDS (5), SOAK_RESULTS (JSON path,
// bench/results/soak.json), SOAK_CLI (dist/cli.js), SOAK_NODE_ARGS (extra node options for the
// exporter, space-separated), SOAK_HEAP_PROBE (seconds: also force a full GC in both of the
// exporter's threads this often and report their live heaps; off by default, as it changes
// the RSS it measures).

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import os from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import { heapCensus, heapGrowth } from './heap-growth.mjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const STATUSES = ['success', 'failure', 'cancelled', 'skipped', 'unknown']
const SCRAPE_TIMEOUT_MS = 5000
const KEPT_FAILURES = 20
// The issue's bar: a leak of even 1 KB/min is a bug to find.
const LEAK_BYTES_PER_MINUTE = 1024
const LEAK_FLOOR_BYTES = 16 * 1024

function readOptions(env) {
  const positive = (name, fallback) => {
    if (env[name] === undefined || env[name] === '') return fallback
    const value = Number(env[name])
    if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number (got "${env[name]}")`)
    return value
  }
  const seconds = positive('SOAK_SECONDS', 600)
  return {
    seconds,
    rate: positive('SOAK_RATE', 100),
    jobMs: positive('SOAK_JOB_MS', 100),
    interval: positive('SOAK_INTERVAL', 1),
    // At least five samples however short the run, so a trend can be fitted.
    sampleSeconds: positive('SOAK_SAMPLE_SECONDS', Math.min(5, seconds / 5)),
    results: resolve(env.SOAK_RESULTS || join(root, 'bench', 'results', 'soak.json')),
    cli: resolve(env.SOAK_CLI || join(root, 'dist', 'cli.js')),
    nodeArgs: (env.SOAK_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== ''),
    heapProbeSeconds: env.SOAK_HEAP_PROBE ? positive('SOAK_HEAP_PROBE', 0) : 0,
  }
}

async function freePort() {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  await once(server, 'close')
  return port
}

/** Starts the exporter; resolves once it printed its start line. */
async function startExporter(options, dir) {
  const port = await freePort()
  const probe = options.heapProbeSeconds > 0 ? ['--expose-gc', '--import', join(root, 'bench', 'heap-probe.mjs')] : []
  const args = [
    ...options.nodeArgs, ...probe, options.cli, 'serve', '--host', '127.0.0.1', '--port', String(port),
    '--metrics-file', join(dir, 'metrics.prom'), '--jobs-log', join(dir, 'jobs.log'),
    '--interval', String(options.interval), '--runner-name', 'soak',
  ]
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  delete env.NODE_V8_COVERAGE
  if (probe.length > 0) Object.assign(env, { HEAP_PROBE_FILE: join(dir, 'heap-probe.jsonl'), HEAP_PROBE_MS: String(options.heapProbeSeconds * 1000), HEAP_PROBE_SNAPSHOTS: snapshotSamples(options).join(',') })
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] })
  process.on('exit', () => child.exitCode === null && child.kill('SIGKILL'))
  const stderr = []
  let pending = ''
  child.stderr.setEncoding('utf8')
  await new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      pending += chunk
      const lines = pending.split('\n')
      pending = lines.pop()
      for (const line of lines) {
        if (stderr.length < 1000) stderr.push(line)
        if (/^runner-metrics: serving /.test(line)) resolve()
      }
    })
    child.once('exit', (code) => reject(new Error(`the exporter exited (${code}) before serving: ${stderr.join('\n')}`)))
  })
  return { child, port, stderr }
}

/**
 * Which probe samples also write a heap snapshot: one when a fifth of the run is over (warm-up
 * done), one a sample before the end (so that it is surely written before the soak stops).
 */
function snapshotSamples({ seconds, heapProbeSeconds }) {
  const first = Math.max(1, Math.round(seconds / 5 / heapProbeSeconds))
  const last = Math.floor(seconds / heapProbeSeconds) - 1
  return last > first ? [first, last] : []
}

/** One scrape on a new connection: resolves with { ok, ms, reason?, body? }. */
function scrape(port, gzip) {
  return new Promise((resolve) => {
    const startedAt = performance.now()
    const chunks = []
    let reason
    const socket = connect({ port, host: '127.0.0.1' })
    const timer = setTimeout(() => {
      reason = `no whole answer within ${SCRAPE_TIMEOUT_MS} ms`
      socket.destroy()
    }, SCRAPE_TIMEOUT_MS)
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', (error) => (reason ??= error.code ?? error.message))
    socket.on('close', () => {
      clearTimeout(timer)
      const ms = performance.now() - startedAt
      if (reason !== undefined) return resolve({ ok: false, ms, reason })
      const checked = checkResponse(Buffer.concat(chunks), gzip)
      resolve({ ok: checked.reason === undefined, ms, ...checked })
    })
    socket.end(`GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n${gzip ? 'Accept-Encoding: gzip\r\n' : ''}\r\n`)
  })
}

/** A whole 200 carrying a whole metrics file (it ends with the collector's last family). */
function checkResponse(bytes, gzip) {
  const end = bytes.indexOf('\r\n\r\n')
  if (end === -1) return { reason: `no response head (${bytes.length} bytes)` }
  const head = bytes.toString('latin1', 0, end)
  if (!head.startsWith('HTTP/1.1 200 OK\r\n')) return { reason: head.split('\r\n')[0] }
  const length = /\r\nContent-Length: (\d+)(\r\n|$)/.exec(head)
  let body = bytes.subarray(end + 4)
  if (length === null || Number(length[1]) !== body.length) return { reason: `Content-Length ${length?.[1]}, got ${body.length} bytes` }
  if (gzip !== /\r\nContent-Encoding: gzip(\r\n|$)/.test(head)) return { reason: `gzip asked: ${gzip}, got: ${!gzip}` }
  try {
    if (gzip) body = gunzipSync(body)
  } catch (error) {
    return { reason: `bad gzip body: ${error.message}` }
  }
  const text = body.toString('utf8')
  if (!/\nprocess_max_fds \d+\n$/.test(text)) return { reason: `incomplete metrics file: ...${JSON.stringify(text.slice(-60))}` }
  return { body: text }
}

/** jobs_total by status from a metrics file. */
function jobsCounted(text) {
  const counted = {}
  for (const match of text.matchAll(/^github_runner_jobs_total\{[^}]*status="(\w+)"[^}]*\} (\d+)$/gm)) counted[match[1]] = Number(match[2])
  return counted
}

/** The exporter's RSS (KiB; anonymous = its own memory, file = mapped binaries) and open descriptors, from /proc. */
function sampleProcess(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kiB = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)[1])
  return { rssKiB: kiB('VmRSS'), anonKiB: kiB('RssAnon'), fileKiB: kiB('RssFile'), fds: readdirSync(`/proc/${pid}/fd`).length }
}

/** Least-squares slope of y over x. */
function slope(points) {
  const n = points.length
  if (n < 2) return 0
  const mx = points.reduce((sum, [x]) => sum + x, 0) / n
  const my = points.reduce((sum, [, y]) => sum + y, 0) / n
  let sxy = 0
  let sxx = 0
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my)
    sxx += (x - mx) ** 2
  }
  return sxx === 0 ? 0 : sxy / sxx
}

function percentile(sorted, p) {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

/** Calls `task` at start + k * periodMs (catching up if the loop was late), until stopped. */
function every(periodMs, task) {
  const start = performance.now()
  let done = 0
  const timer = setInterval(() => {
    const due = Math.floor((performance.now() - start) / periodMs) + 1
    for (; done < due; done++) task(done)
  }, Math.max(1, Math.min(periodMs, 10)))
  task(done++)
  return () => clearInterval(timer)
}

async function soak(options) {
  const dir = mkdtempSync(join(os.tmpdir(), 'runner-metrics-soak-'))
  try {
    writeFileSync(join(dir, 'jobs.log'), '')
    const exporter = await startExporter(options, dir)
    const { child, port } = exporter
    const exited = once(child, 'exit')
    const startedAt = performance.now()
    const minutes = () => (performance.now() - startedAt) / 60_000

    // Scrapes: fired on a fixed grid, not one after the other, so a slow answer cannot lower the rate.
    const latencies = []
    const failures = []
    let scrapes = 0
    let failed = 0
    const inFlight = new Set()
    const stopScraping = every(1000 / options.rate, (k) => {
      const pending = scrape(port, k % 2 === 1).then((result) => {
        inFlight.delete(pending)
        scrapes++
        latencies.push(result.ms)
        if (!result.ok) {
          failed++
          if (failures.length < KEPT_FAILURES) failures.push({ atSeconds: Math.round(minutes() * 600) / 10, reason: result.reason })
        }
      })
      inFlight.add(pending)
    })

    // Jobs: one finished job per period, the statuses in turn.
    const written = Object.fromEntries(STATUSES.map((status) => [status, 0]))
    const stopLogging = every(options.jobMs, (k) => {
      const status = STATUSES[k % STATUSES.length]
      written[status]++
      appendFileSync(join(dir, 'jobs.log'), `${(Date.now() / 1000).toFixed(3)}|${status}|${(k % 97) * 7.5}|soak-${k}\n`)
    })

    const samples = []
    const stopSampling = every(options.sampleSeconds * 1000, () => samples.push({ minutes: minutes(), ...sampleProcess(child.pid) }))
    let died = false
    child.once('exit', () => (died = true))

    await new Promise((resolve) => {
      const timer = setTimeout(resolve, options.seconds * 1000)
      child.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
    })
    stopScraping()
    stopLogging()
    stopSampling()
    if (!died) samples.push({ minutes: minutes(), ...sampleProcess(child.pid) })
    await Promise.all(inFlight)

    // The last jobs reach the metrics at the next collection: wait for it (bounded).
    let counted = {}
    let finalScrapes = 0
    const deadline = performance.now() + (options.interval * 3 + 5) * 1000
    while (!died && performance.now() < deadline) {
      const result = await scrape(port, false)
      finalScrapes++
      if (result.ok) counted = jobsCounted(result.body)
      if (STATUSES.every((status) => counted[status] === written[status])) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }

    const diedDuringSoak = died
    const stopAt = performance.now()
    if (!died) child.kill('SIGTERM')
    const [exitCode, signal] = await exited
    const stopMs = performance.now() - stopAt
    const stopLine = exporter.stderr.find((line) => line.startsWith('runner-metrics: stopped;')) ?? null
    const served = stopLine === null ? null : Number(/served (\d+) responses/.exec(stopLine)[1])
    const otherLines = exporter.stderr.filter((line) => line !== stopLine && !line.startsWith('runner-metrics: serving '))

    const sortedMs = [...latencies].sort((a, b) => a - b)
    const secondHalf = samples.filter((sample) => sample.minutes >= samples.at(-1).minutes / 2)
    const jobsWritten = STATUSES.reduce((sum, status) => sum + written[status], 0)
    const result = {
      startedAt: new Date(Date.now() - (performance.now() - startedAt)).toISOString(),
      machine: { cpuModel: cpuModel(), cores: os.availableParallelism(), memoryGiB: Math.round(os.totalmem() / 2 ** 30), kernel: `${os.type()} ${os.release()}`, node: process.version, loadAverageAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100) },
      options: { seconds: options.seconds, rate: options.rate, jobMs: options.jobMs, interval: options.interval, sampleSeconds: options.sampleSeconds },
      scrapes: { total: scrapes, failed, ratePerSecond: Math.round((scrapes / options.seconds) * 10) / 10, latencyMs: { p50: round(percentile(sortedMs, 50)), p99: round(percentile(sortedMs, 99)), max: round(sortedMs.at(-1) ?? 0) }, failures },
      jobs: { written, counted, writtenTotal: jobsWritten, exact: STATUSES.every((status) => counted[status] === written[status]) },
      rss: {
        startKiB: samples[0]?.rssKiB ?? null,
        endKiB: samples.at(-1)?.rssKiB ?? null,
        peakKiB: Math.max(...samples.map((sample) => sample.rssKiB)),
        slopeKiBPerMinute: round(slope(samples.map((s) => [s.minutes, s.rssKiB]))),
        secondHalfSlopeKiBPerMinute: round(slope(secondHalf.map((s) => [s.minutes, s.rssKiB]))),
        anon: trend(samples, secondHalf, 'anonKiB'),
        file: trend(samples, secondHalf, 'fileKiB'),
      },
      heapProbe: options.heapProbeSeconds > 0 ? heapProbeTrends(join(dir, 'heap-probe.jsonl'), startedAt) : null,
      fds: {
        start: samples[0]?.fds ?? null,
        end: samples.at(-1)?.fds ?? null,
        max: Math.max(...samples.map((sample) => sample.fds)),
        slopePerMinute: round(slope(samples.map((s) => [s.minutes, s.fds]))),
      },
      samples: samples.map((s) => ({ minutes: round(s.minutes), rssKiB: s.rssKiB, anonKiB: s.anonKiB, fileKiB: s.fileKiB, fds: s.fds })),
      exporter: { diedDuringSoak, exitCode, signal, stopMs: round(stopMs), stopLine, served, scrapesSent: scrapes + finalScrapes, otherStderr: otherLines.slice(0, 20) },
    }
    result.problems = problemsOf(result)
    return result
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** start, end, peak and slopes (per minute, overall and over the second half) of one sampled field. */
function trend(samples, secondHalf, field) {
  return {
    start: samples[0]?.[field] ?? null,
    end: samples.at(-1)?.[field] ?? null,
    peak: Math.max(...samples.map((sample) => sample[field])),
    slopePerMinute: round(slope(samples.map((s) => [s.minutes, s[field]]))),
    secondHalfSlopePerMinute: round(slope(secondHalf.map((s) => [s.minutes, s[field]]))),
  }
}

/**
 * Per thread: the live heap (KiB after a forced full GC) and V8's heap capacity, with their
 * trends, and what grew between the thread's two heap snapshots.
 */
function heapProbeTrends(file, startedAt) {
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((line) => line !== '') : []
  const byThread = new Map()
  for (const sample of lines.map((line) => JSON.parse(line))) {
    if (!byThread.has(sample.thread)) byThread.set(sample.thread, [])
    byThread.get(sample.thread).push(sample)
  }
  const startedAtEpochMs = Date.now() - (performance.now() - startedAt)
  const trends = {}
  for (const [thread, raw] of byThread) {
    const samples = raw.filter((sample) => sample.liveBytes !== undefined).map((sample) => ({
      minutes: (sample.at - startedAtEpochMs) / 60_000,
      liveKiB: sample.liveBytes / 1024,
      heapKiB: sample.heapBytes / 1024,
      externalKiB: sample.externalBytes / 1024,
    }))
    const secondHalf = samples.filter((sample) => sample.minutes >= samples.at(-1).minutes / 2)
    trends[thread] = {
      samples: samples.length,
      liveKiB: trend(samples, secondHalf, 'liveKiB'),
      heapKiB: trend(samples, secondHalf, 'heapKiB'),
      externalKiB: trend(samples, secondHalf, 'externalKiB'),
      growth: snapshotGrowth(raw.filter((sample) => sample.snapshot !== undefined), startedAtEpochMs),
    }
  }
  return trends
}

function snapshotGrowth(snapshots, startedAtEpochMs) {
  if (snapshots.length < 2) return null
  const [before, after] = [snapshots[0], snapshots.at(-1)]
  const minutes = (after.at - before.at) / 60_000
  const growth = heapGrowth(heapCensus(before.snapshot), heapCensus(after.snapshot))
  return {
    fromMinute: round((before.at - startedAtEpochMs) / 60_000),
    toMinute: round((after.at - startedAtEpochMs) / 60_000),
    dataBytes: growth.dataBytes,
    dataBytesPerMinute: round(growth.dataBytes / minutes),
    runtimeBytes: growth.runtimeBytes,
    largestData: growth.largestData,
  }
}

function problemsOf(result) {
  const problems = []
  if (result.scrapes.failed > 0) problems.push(`${result.scrapes.failed} failed scrapes`)
  if (!result.jobs.exact) problems.push(`jobs written ${JSON.stringify(result.jobs.written)}, counted ${JSON.stringify(result.jobs.counted)}`)
  if (result.exporter.diedDuringSoak) problems.push('the exporter died during the soak')
  if (result.exporter.exitCode !== 0) problems.push(`the exporter exited with ${result.exporter.exitCode ?? result.exporter.signal}`)
  if (result.exporter.stopLine === null) problems.push('the exporter did not print its stop line')
  else if (result.exporter.served !== result.exporter.scrapesSent) problems.push(`the exporter served ${result.exporter.served} responses, we sent ${result.exporter.scrapesSent} scrapes`)
  if (result.exporter.stopMs > 1000) problems.push(`the exporter took ${result.exporter.stopMs} ms to stop`)
  if (result.exporter.otherStderr.length > 0) problems.push(`the exporter logged: ${result.exporter.otherStderr.join(' | ')}`)
  for (const [thread, { growth }] of Object.entries(result.heapProbe ?? {})) {
    // Some KiB come and go without leaking: a Buffer pool slab (8 KiB) stays alive as long as one
    // small buffer cut from it does (a cached reply). A leak is more than that, and steady.
    if (growth !== null && growth.dataBytes > LEAK_FLOOR_BYTES && growth.dataBytesPerMinute > LEAK_BYTES_PER_MINUTE) {
      problems.push(`the ${thread} thread's heap data grew by ${growth.dataBytesPerMinute} B/min (largest: ${growth.largestData.map((row) => `${row.key} +${row.bytes} B`).join(', ')})`)
    }
  }
  return problems
}

function round(value) {
  return Math.round(value * 100) / 100
}

function cpuModel() {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))[1].trim()
  } catch {
    return os.cpus()[0]?.model ?? 'unknown'
  }
}

function report(result) {
  const { scrapes, jobs, rss, fds, exporter, machine, options } = result
  const rows = [
    ['duration', `${options.seconds} s (${options.rate} scrapes/s, a job every ${options.jobMs} ms, a collection every ${options.interval} s)`],
    ['scrapes', `${scrapes.total} (${scrapes.ratePerSecond}/s), ${scrapes.failed} failed`],
    ['latency', `p50 ${scrapes.latencyMs.p50} ms, p99 ${scrapes.latencyMs.p99} ms, max ${scrapes.latencyMs.max} ms`],
    ['jobs', `${jobs.writtenTotal} written, ${jobs.exact ? 'every one counted exactly once' : `MISCOUNTED: ${JSON.stringify(jobs.counted)}`}`],
    ['RSS', `start ${mib(rss.startKiB)}, end ${mib(rss.endKiB)}, peak ${mib(rss.peakKiB)} MiB`],
    ['RSS slope', `${rss.slopeKiBPerMinute} KiB/min overall, ${rss.secondHalfSlopeKiBPerMinute} KiB/min over the second half`],
    ['anon RSS', `start ${mib(rss.anon.start)}, end ${mib(rss.anon.end)}, peak ${mib(rss.anon.peak)} MiB; slope ${rss.anon.slopePerMinute} KiB/min, ${rss.anon.secondHalfSlopePerMinute} over the second half`],
    ['file RSS', `start ${mib(rss.file.start)}, end ${mib(rss.file.end)} MiB; slope ${rss.file.slopePerMinute} KiB/min, ${rss.file.secondHalfSlopePerMinute} over the second half`],
    ...Object.entries(result.heapProbe ?? {}).map(([thread, heap]) => [
      `live heap, ${thread}`,
      `${heap.samples} forced GCs: ${heap.liveKiB.start.toFixed(0)} -> ${heap.liveKiB.end.toFixed(0)} KiB, slope ${heap.liveKiB.slopePerMinute} KiB/min, ${heap.liveKiB.secondHalfSlopePerMinute} over the second half (heap ${heap.heapKiB.end.toFixed(0)} KiB, external ${heap.externalKiB.end.toFixed(0)} KiB)`,
    ]),
    ...Object.entries(result.heapProbe ?? {}).filter(([, heap]) => heap.growth !== null).map(([thread, { growth }]) => [
      `heap growth, ${thread}`,
      `minute ${growth.fromMinute} to ${growth.toMinute}: data ${growth.dataBytes} B (${growth.dataBytesPerMinute} B/min), V8's code and runtime ${(growth.runtimeBytes / 1024).toFixed(1)} KiB`,
    ]),
    ['open fds', `start ${fds.start}, end ${fds.end}, max ${fds.max}; slope ${fds.slopePerMinute}/min`],
    ['stop', `exit ${exporter.exitCode ?? exporter.signal} after ${exporter.stopMs} ms; served ${exporter.served} responses for ${exporter.scrapesSent} scrapes`],
  ]
  const width = Math.max(...rows.map(([name]) => name.length))
  const lines = [
    `runner-metrics soak, ${result.startedAt}`,
    `machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.kernel}, node ${machine.node}; load average at end ${machine.loadAverageAtEnd.join(' ')}`,
    '',
    ...rows.map(([name, value]) => `${name.padEnd(width)}  ${value}`),
    '',
    ...result.scrapes.failures.map((failure) => `failed scrape at ${failure.atSeconds} s: ${failure.reason}`),
    result.problems.length === 0 ? 'PASS' : `FAIL: ${result.problems.join('; ')}`,
  ]
  return `${lines.join('\n')}\n`
}

function mib(kib) {
  return kib === null ? '?' : (kib / 1024).toFixed(1)
}

const options = readOptions(process.env)
if (!existsSync(options.cli)) {
  process.stderr.write(`soak: ${options.cli} is missing: run \`npm run build\` first\n`)
  process.exit(2)
}
process.stderr.write(`soak: ${options.seconds} s against ${options.cli}\n`)
const result = await soak(options)
process.stdout.write(report(result))
mkdirSync(dirname(options.results), { recursive: true })
writeFileSync(`${options.results}.tmp`, `${JSON.stringify(result, null, 2)}\n`)
renameSync(`${options.results}.tmp`, options.results)
process.stderr.write(`soak: wrote ${options.results}\n`)
process.exitCode = result.problems.length === 0 ? 0 : 1

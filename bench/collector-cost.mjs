// What a collection costs: a cold `collect` over logs of growing size (time and peak RSS), and
// incremental collections of 1,000 appended lines by a running `serve` (its own
// github_runner_collector_duration_seconds), to show the cost follows the new lines.

import { copyFileSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { writeJobLog } from './joblog.mjs'
import { onFreePort, startOurs } from './peers.mjs'
import { spawnTracked } from './processes.mjs'
import { median, round } from './stats.mjs'

const peakRssPreload = pathToFileURL(fileURLToPath(new URL('./peak-rss.mjs', import.meta.url))).href

/**
 * Cold collections: for each size, a job log of that many lines (a prefix of the biggest, so
 * the content is the same), `repeat` runs of `node dist/cli.js collect`; medians reported.
 */
export async function measureColdCollections({ cli, dir, sizes, repeat }) {
  const biggest = join(dir, `jobs-${Math.max(...sizes)}.log`)
  writeJobLog(biggest, { lines: Math.max(...sizes) })
  const results = []
  for (const lines of sizes) {
    const log = join(dir, `jobs-${lines}.log`)
    if (log !== biggest) writeJobLog(log, { lines })
    const runs = []
    for (let i = 0; i < repeat; i++) runs.push(await coldCollect({ cli, jobsLog: log, metricsFile: join(dir, `cold-${lines}.prom`) }))
    results.push({
      lines,
      logMB: round(statSync(log).size / 1e6, 1),
      wallSeconds: median(runs.map((r) => r.wallSeconds)),
      collectorSeconds: median(runs.map((r) => r.collectorSeconds)),
      peakRssMB: median(runs.map((r) => r.peakRssMB)),
      runs,
    })
  }
  return { logs: Object.fromEntries(sizes.map((lines) => [lines, join(dir, `jobs-${lines}.log`)])), results }
}

export async function coldCollect({ cli, jobsLog, metricsFile }) {
  const started = performance.now()
  const child = spawnTracked(
    process.execPath,
    ['--import', peakRssPreload, cli, 'collect', '--jobs-log', jobsLog, '--metrics-file', metricsFile, '--runner-name', 'bench-runner'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  const [code] = await Promise.all([child.exited.then((e) => e.code), new Promise((resolve) => child.stderr.on('end', resolve))])
  const wallSeconds = (performance.now() - started) / 1000
  if (code !== 0) throw new Error(`collect exited with ${code}: ${stderr.trim()}`)
  const peak = /bench-peak-rss-kib: (\d+)/.exec(stderr)
  return {
    wallSeconds: round(wallSeconds, 3),
    collectorSeconds: collectorDuration(readFileSync(metricsFile, 'utf8')),
    peakRssMB: peak ? round((Number(peak[1]) * 1024) / 1e6, 1) : null,
    jobs: finishedJobs(readFileSync(metricsFile, 'utf8')),
  }
}

/**
 * A running `serve` over the log, then `repeat` times: append `lines` lines right after a
 * collection (so one collection reads them all) and read the duration of the collection that
 * counted them.
 */
export async function measureIncremental({ cli, dir, baseLog, baseLines, lines = 1000, repeat }) {
  const jobsLog = join(dir, 'incremental.log')
  copyFileSync(baseLog, jobsLog)
  const metricsFile = join(dir, 'incremental.prom')
  const server = await onFreePort((port) => startOurs({ cli, port, metricsFile, jobsLog, interval: 1 }))
  try {
    let text = await waitForFile(metricsFile, (t) => finishedJobs(t) === Math.floor(baseLines / 2), 60_000)
    const first = collectorDuration(text)
    const runs = []
    for (let i = 0; i < repeat; i++) {
      const before = finishedJobs(text)
      const version = fileVersion(metricsFile)
      text = await waitForFile(metricsFile, () => fileVersion(metricsFile) !== version, 10_000)
      writeJobLog(jobsLog, { lines, flag: 'a', seed: 100 + i, startEpoch: 2_100_000_000 + i * 1_000_000, jobNumber: 10_000_000 * (i + 1) })
      text = await waitForFile(metricsFile, (t) => finishedJobs(t) > before, 10_000)
      runs.push({ newJobs: finishedJobs(text) - before, collectorSeconds: collectorDuration(text) })
    }
    return {
      baseLines,
      appendedLines: lines,
      firstCollectionSeconds: first,
      collectorSeconds: median(runs.map((r) => r.collectorSeconds)),
      allInOneCollection: runs.every((r) => r.newJobs === lines / 2),
      runs,
    }
  } finally {
    await server.stop()
  }
}

async function waitForFile(file, ready, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let text = null
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      // Not written yet.
    }
    if (text !== null && ready(text)) return text
    if (Date.now() > deadline) throw new Error(`${file} did not reach the expected state within ${timeoutMs / 1000} s`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

function fileVersion(file) {
  try {
    const s = statSync(file)
    return `${s.ino}:${s.size}:${s.mtimeMs}`
  } catch {
    return null
  }
}

/** The sum of github_runner_jobs_total over its statuses. */
export function finishedJobs(text) {
  let total = 0
  for (const m of text.matchAll(/^github_runner_jobs_total\{[^}]*\} (\S+)$/gm)) total += Number(m[1])
  return total
}

function collectorDuration(text) {
  const m = /^github_runner_collector_duration_seconds(?:\{[^}]*\})? (\S+)$/m.exec(text)
  return m ? Number(m[1]) : null
}

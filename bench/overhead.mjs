// Overhead of the real CLI over time: CPU from /proc/PID/stat (utime + stime, all threads) as %
// of one core, memory from /proc/PID/status (VmRSS, VmHWM = peak, RssAnon, RssFile).

import { execFileSync } from 'node:child_process'
import { appendFileSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { jobLines } from './joblog.mjs'
import { onFreePort, startOurs } from './peers.mjs'
import { spawnTracked, stopTracked } from './processes.mjs'
import { round, summarize } from './stats.mjs'

const clockTicks = readClockTicks()

/** utime + stime of a process, in seconds. The command name may hold spaces: parse after ")". */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / clockTicks
}

/**
 * VmRSS, VmHWM, RssAnon, RssFile and PSS in MB (10^6 bytes, as the budgets are written; /proc's
 * "kB" are KiB). PSS divides shared pages (the node binary's, mostly) among the processes
 * mapping them: what this process adds on a machine that runs other Node processes too.
 */
export function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  let rollup = ''
  try {
    rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
  } catch {
    // Kernels before 4.14 have no rollup: PSS stays unknown.
  }
  const mb = (text, key) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)
    return m ? round((Number(m[1]) * 1024) / 1e6, 1) : null
  }
  return { rss: mb(status, 'VmRSS'), hwm: mb(status, 'VmHWM'), anon: mb(status, 'RssAnon'), file: mb(status, 'RssFile'), pss: mb(rollup, 'Pss') }
}

/**
 * Two instances of `serve --interval 1` side by side over the same job log (a job appended every
 * 10 s): one scraped once a second like an eager Prometheus (gzip, a new connection each time),
 * one idle. The window starts after `settleSeconds`, so the one-off start-up cost is reported
 * apart from the steady state.
 */
export async function measureOverhead({ cli, jobsLog, dir, seconds, settleSeconds = 2 }) {
  const [scraped, idle] = await Promise.all(
    ['scraped', 'idle'].map(async (name) => {
      const server = await onFreePort((port) => startOurs({ cli, port, metricsFile: join(dir, `overhead-${name}.prom`), jobsLog, interval: 1 }))
      return { name, server, port: server.port }
    }),
  )
  const appendJob = jobLines({ seed: 7, startEpoch: 1_900_000_000, jobNumber: 5_000_000 })
  const scrapes = []
  const runs = [scraped, idle]
  try {
    await sleep(settleSeconds * 1000)
    const start = runs.map((run) => ({ cpu: cpuSeconds(run.server.pid), at: performance.now() }))
    const startup = runs.map((run, i) => ({ cpuSeconds: round(start[i].cpu, 2), memory: memory(run.server.pid) }))
    const maxRss = [0, 0]
    for (let second = 1; second <= seconds; second++) {
      const tick = sleep(1000)
      scrapes.push(await scrape(scraped.port))
      if (second % 10 === 0) appendFileSync(jobsLog, appendJob() + appendJob())
      await tick
      runs.forEach((run, i) => {
        maxRss[i] = Math.max(maxRss[i], memory(run.server.pid).rss)
      })
    }
    const results = runs.map((run, i) => {
      const wall = (performance.now() - start[i].at) / 1000
      const cpu = cpuSeconds(run.server.pid) - start[i].cpu
      const end = memory(run.server.pid)
      return {
        name: run.name,
        seconds: round(wall, 1),
        cpuSeconds: round(cpu, 3),
        cpuPercent: round((cpu / wall) * 100, 3),
        rssPeakMB: end.hwm,
        rssSampledMaxMB: maxRss[i],
        rssEndMB: end.rss,
        rssAnonEndMB: end.anon,
        rssFileEndMB: end.file,
        pssEndMB: end.pss,
        startup: startup[i],
      }
    })
    const stopped = await Promise.all(runs.map((run) => run.server.stop()))
    results[0].scrapes = {
      count: scrapes.length,
      ok: scrapes.filter((s) => s.status === 200).length,
      failed: scrapes.filter((s) => s.status !== 200).map((s) => s.error ?? `status ${s.status}`),
      latencyMs: summarize(scrapes.map((s) => s.ms)),
      served: stopped[0].served,
    }
    results[1].scrapes = { count: 0, served: stopped[1].served }
    return { interval: 1, scrapesPerSecond: 1, scraped: results[0], idle: results[1], nodeFloor: await measureNodeFloor() }
  } finally {
    await Promise.all(runs.map((run) => run.server.stop()))
  }
}

/**
 * The floor under ours' memory on this machine: a bare `node` process that does nothing, and
 * one that starts an idle worker thread (the collector's shape), measured the same way.
 */
export async function measureNodeFloor() {
  const floor = {}
  const programs = {
    bare: 'setTimeout(() => {}, 60_000)',
    withWorker: "new (require('node:worker_threads').Worker)('setTimeout(() => {}, 60_000)', { eval: true }); setTimeout(() => {}, 60_000)",
  }
  for (const [name, program] of Object.entries(programs)) {
    const child = spawnTracked(process.execPath, ['-e', program], { stdio: 'ignore' })
    await sleep(1500)
    floor[name] = memory(child.pid)
    await stopTracked(child)
  }
  return floor
}

/** One Prometheus-like scrape: a fresh connection, gzip accepted, body read to the end. */
function scrape(port) {
  const started = performance.now()
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/metrics', agent: false, headers: { 'accept-encoding': 'gzip' }, timeout: 2000 },
      (res) => {
        res.resume()
        res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - started }))
      },
    )
    req.on('timeout', () => req.destroy(new Error('timed out after 2 s')))
    req.on('error', (error) => resolve({ status: 0, ms: performance.now() - started, error: error.message }))
    req.end()
  })
}

function readClockTicks() {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100 // USER_HZ on every Linux architecture Node runs on.
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

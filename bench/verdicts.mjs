// Budgets (a miss fails the bench), targets (a miss is reported, not hidden), the checks that
// the measurement itself is sound, and the ratios that travel between machines.

import { round } from './stats.mjs'

export function judge({ scrape, overhead, collector, quick }) {
  const ours = scrape.autocannon.ours
  const wrk = scrape.wrk.ours ?? { socketErrors: 0, non2xx: 0 }
  const budgets = [
    {
      name: 'ours: 0 errors, 0 timeouts, 0 non-2xx (autocannon errors/timeouts/non-2xx; wrk socket errors/non-2xx)',
      value: `${ours.errors} / ${ours.timeouts} / ${ours.non2xx}; ${wrk.socketErrors} / ${wrk.non2xx}`,
      pass: ours.errors === 0 && ours.timeouts === 0 && ours.non2xx === 0 && wrk.socketErrors === 0 && wrk.non2xx === 0,
    },
    limit('scrape p99 < 100 ms', ours.latencyMs.p99, (v) => v < 100, 'ms'),
    limit('overhead CPU < 1 % of one core', overhead.scraped.cpuPercent, (v) => v < 1, '%'),
    limit('RSS peak < 50 MB in the overhead run', overhead.scraped.rssPeakMB, (v) => v < 50, 'MB'),
  ]

  const wrkOurs = scrape.wrk.ours?.requestsPerSecond
  const wrkNginx = scrape.wrk.nginx?.requestsPerSecond
  const cold = collector.cold.results.find((r) => r.lines === 1_000_000)
  const targets = [
    wrkOurs && wrkNginx
      ? limit('wrk throughput >= 0.5x nginx', round(wrkOurs / wrkNginx, 2), (v) => v >= 0.5, 'x')
      : notMeasured('wrk throughput >= 0.5x nginx', 'needs wrk and nginx'),
    limit('scrape p99 <= 5 ms', ours.latencyMs.p99, (v) => v <= 5, 'ms'),
    limit('overhead CPU <= 0.3 %', overhead.scraped.cpuPercent, (v) => v <= 0.3, '%'),
    limit('RSS peak <= 45 MB', overhead.scraped.rssPeakMB, (v) => v <= 45, 'MB'),
    cold
      ? limit('10^6-line cold collection <= 2 s', cold.wallSeconds, (v) => v <= 2, 's')
      : notMeasured('10^6-line cold collection <= 2 s', quick ? 'quick mode uses 10^4 lines' : 'not run'),
    collector.incremental.baseLines === 1_000_000
      ? limit('1,000-line incremental collection <= 20 ms', ms(collector.incremental.collectorSeconds), (v) => v <= 20, 'ms')
      : notMeasured('1,000-line incremental collection <= 20 ms', 'measured on 10^4 lines in quick mode'),
  ]

  const checks = [
    {
      name: 'ours: served count = autocannon 2xx',
      value: `${ours.served} = ${ours.status2xx}`,
      pass: ours.served === ours.status2xx,
    },
    // A peer answering errors (nginx unable to read the file, say) would make its figures
    // meaningless; the netcat loop is exempt, its failure is the finding.
    ...['nginx', 'node:http']
      .filter((peer) => scrape.autocannon[peer])
      .map((peer) => ({
        name: `${peer}: answered 2xx to every request`,
        value: `${scrape.autocannon[peer].non2xx} non-2xx, ${scrape.autocannon[peer].errors} errors`,
        pass: scrape.autocannon[peer].non2xx === 0 && scrape.autocannon[peer].errors === 0,
      })),
    {
      name: 'overhead: every scrape answered 200',
      value: `${overhead.scraped.scrapes.ok} / ${overhead.scraped.scrapes.count}`,
      pass: overhead.scraped.scrapes.ok === overhead.scraped.scrapes.count,
    },
    {
      name: 'incremental: each 1,000-line append counted in one collection',
      value: String(collector.incremental.allInOneCollection),
      pass: collector.incremental.allInOneCollection,
    },
  ]

  return { budgets, targets, checks, ratios: ratios(scrape) }
}

/** ours / peer for req/s (higher is better for ours) and p99 (lower is better for ours). */
export function ratios(scrape) {
  const ours = scrape.autocannon.ours
  const out = {}
  for (const peer of ['nginx', 'netcat', 'node:http']) {
    const other = scrape.autocannon[peer]
    if (!other) {
      out[peer] = { note: 'not measured (skipped or failed, see above)' }
      continue
    }
    if (other.responses === 0) {
      out[peer] = { note: `${peer} completed no response (ours: ${ours.responses})` }
      continue
    }
    out[peer] = {
      requestsPerSecond: round(ours.requestsPerSecond / other.requestsPerSecond, 2),
      p99: other.latencyMs.p99 ? round(ours.latencyMs.p99 / other.latencyMs.p99, 2) : null,
    }
    if (peer === 'nginx' && scrape.wrk.ours && scrape.wrk.nginx) {
      out[peer].wrkRequestsPerSecond = round(scrape.wrk.ours.requestsPerSecond / scrape.wrk.nginx.requestsPerSecond, 2)
    }
  }
  return out
}

function limit(name, value, ok, unit) {
  if (value === null || value === undefined) return { name, value: null, unit, pass: false, note: 'no value measured' }
  return { name, value, unit, pass: ok(value) }
}

function notMeasured(name, note) {
  return { name, value: null, pass: null, note }
}

function ms(seconds) {
  return seconds === null ? null : round(seconds * 1000, 2)
}

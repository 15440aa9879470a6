// The scrape load, peer by peer: each run starts a fresh server, loads it, stops it and keeps
// what the client saw next to what the server says it served. Rounds are interleaved
// (ours, nginx, node:http, ours, ...) so a noisy neighbour spreads over every peer alike.

import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { runAutocannon, runWrk } from './load.mjs'
import { onFreePort, startNetcatLoop, startNginx, startNodeHttp, startOurs } from './peers.mjs'
import { median } from './stats.mjs'

/**
 * @param tools `{ nginx, nc, wrk }` paths, null when missing (that peer is skipped and said so).
 * The netcat loop runs once: it fails the same way every time, each run costs its timeouts.
 */
export async function runScrapeLoad({ cli, tools, dir, metricsFile, jobsLog, seconds, runs, timeoutSeconds = 2, log }) {
  const peers = {
    ours: async () => {
      const ownFile = join(dir, 'ours.prom')
      copyFileSync(metricsFile, ownFile)
      return onFreePort((port) => startOurs({ cli, port, metricsFile: ownFile, jobsLog }))
    },
    netcat: tools.nc ? () => onFreePort((port) => startNetcatLoop({ port, metricsFile: join(dir, 'netcat.prom'), dir })) : null,
    nginx: tools.nginx ? () => onFreePort((port) => startNginx({ nginx: tools.nginx, port, metricsFile, dir })) : null,
    'node:http': () => onFreePort((port) => startNodeHttp({ port, metricsFile })),
  }
  copyFileSync(metricsFile, join(dir, 'netcat.prom'))
  const skipped = []
  if (!tools.nc) skipped.push({ peer: 'netcat', reason: 'nc not found (netcat-openbsd); `make bench-deps` installs it' })
  if (!tools.nginx) skipped.push({ peer: 'nginx', reason: 'nginx not found; `make bench-deps` installs it' })
  if (!tools.wrk) skipped.push({ peer: 'wrk', reason: 'wrk not found: no throughput runs; `make bench-deps` installs it' })

  const autocannonRuns = {}
  const wrkRuns = {}
  const failed = []
  for (let round = 1; round <= runs; round++) {
    for (const [name, start] of Object.entries(peers)) {
      if (!start || (name === 'netcat' && round > 1)) continue
      log(`scrape load: autocannon against ${name}, run ${round}/${name === 'netcat' ? 1 : runs}`)
      const run = await measured(name, start, (peer) => runAutocannon({ url: peer.url, seconds, timeoutSeconds }), failed)
      if (run) (autocannonRuns[name] ??= []).push(run)
    }
    if (!tools.wrk) continue
    for (const name of ['ours', 'nginx']) {
      if (!peers[name]) continue
      log(`scrape load: wrk against ${name}, run ${round}/${runs}`)
      const run = await measured(name, peers[name], (peer) => runWrk({ wrk: tools.wrk, url: peer.url, seconds, timeoutSeconds }), failed)
      if (run) (wrkRuns[name] ??= []).push(run)
    }
  }
  return {
    connections: 10,
    seconds,
    runs,
    timeoutSeconds,
    autocannon: mapValues(autocannonRuns, summarizeAutocannon),
    wrk: mapValues(wrkRuns, summarizeWrk),
    skipped,
    failed,
  }
}

/** Starts a peer, runs the load, stops it; a peer that fails to start or run is recorded, not fatal, unless it is ours. */
async function measured(name, start, load, failed) {
  let peer
  try {
    peer = await start()
  } catch (error) {
    if (name === 'ours') throw error
    failed.push({ peer: name, stage: 'start', error: error.message })
    return null
  }
  let result
  try {
    result = await load(peer)
  } catch (error) {
    await peer.stop()
    if (name === 'ours') throw error
    failed.push({ peer: name, stage: 'load', error: error.message })
    return null
  }
  const server = await peer.stop()
  return { ...result, served: server.served, served200: server.served200, serverExit: server.exit, serverStderr: server.stderr || undefined }
}

function summarizeAutocannon(runs) {
  return {
    requestsPerSecond: median(runs.map((r) => r.requestsPerSecond)),
    latencyMs: {
      p50: median(runs.map((r) => r.latencyMs.p50)),
      p99: median(runs.map((r) => r.latencyMs.p99)),
      max: maxOf(runs.map((r) => r.latencyMs.max)),
    },
    responses: sum(runs, (r) => r.responses),
    status2xx: sum(runs, (r) => r.status2xx),
    non2xx: sum(runs, (r) => r.non2xx),
    errors: sum(runs, (r) => r.errors),
    timeouts: sum(runs, (r) => r.timeouts),
    served: runs.every((r) => r.served !== null) ? sum(runs, (r) => r.served) : null,
    wire: {
      connectionsOpened: sum(runs, (r) => r.wire.connectionsOpened),
      connectionsWithData: sum(runs, (r) => r.wire.connectionsWithData),
      bytesReceived: sum(runs, (r) => r.wire.bytesReceived),
    },
    runs,
  }
}

function summarizeWrk(runs) {
  return {
    requestsPerSecond: median(runs.map((r) => r.requestsPerSecond)),
    latencyMs: {
      p50: median(runs.map((r) => r.latencyMs.p50)),
      p99: median(runs.map((r) => r.latencyMs.p99)),
      max: maxOf(runs.map((r) => r.latencyMs.max)),
    },
    requests: sum(runs, (r) => r.requests),
    socketErrors: sum(runs, (r) => r.socketErrors.connect + r.socketErrors.read + r.socketErrors.write + r.socketErrors.timeout),
    non2xx: sum(runs, (r) => r.non2xx),
    served: runs.every((r) => r.served !== null) ? sum(runs, (r) => r.served) : null,
    runs,
  }
}

function sum(runs, pick) {
  return runs.reduce((total, run) => total + pick(run), 0)
}

function maxOf(values) {
  const xs = values.filter((x) => typeof x === 'number')
  return xs.length ? Math.max(...xs) : null
}

function mapValues(object, fn) {
  return Object.fromEntries(Object.entries(object).map(([key, value]) => [key, fn(value)]))
}

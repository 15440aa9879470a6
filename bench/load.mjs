// Drives the scrape load: autocannon (latency, errors, per-request accounting) and wrk
// (throughput: autocannon's own client saturates near 10k requests/s on two cores).

import autocannon from 'autocannon'
import { spawnTracked } from './processes.mjs'
import { round, summarize } from './stats.mjs'

/**
 * autocannon 9 assumes keep-alive connections. Against a server that closes after every
 * response (ours, nginx with `keepalive_timeout 0`, anything answering `Connection: close`)
 * its client (lib/httpClient.js) mis-measures:
 * - on "message complete" it writes the next request onto the socket the server is closing and
 *   queues it; on `end` it reconnects and queues another. The first is never answered, so each
 *   later response is matched to a request one cycle older: the queue grows by one per
 *   response and the reported latency grows with the run length (p50 ~1.4 s in a 6 s run
 *   against a server that answers in under 1 ms).
 * - `reconnectRate` reconnects, but returns before the response is counted.
 * - a response whose body ends at EOF (no Content-Length) is never completed: it does not call
 *   `parser.finish()` on `end`.
 * The fix, installed through the `setupClient` hook: never write onto a connection the
 * response said will close; complete a close-delimited body at `end`; start every connection
 * with an empty request queue and a fresh parser. `state.draining` lets a run end without
 * cutting requests in flight, so the client's count can match the server's.
 */
export function correctForClosingServer(client, state = newRunState()) {
  const connect = client._connect
  const doRequest = client._doRequest
  let closing = false

  client.on('headers', (info) => {
    closing = info.shouldKeepAlive === false
  })

  client._doRequest = function () {
    if (state.draining) return goIdle(this, state)
    if (closing) return undefined
    return doRequest.call(this)
  }

  client._connect = function () {
    closing = false
    this.pipelinedRequests.clear()
    this.parser.initialize(this.parser.type)
    if (state.draining) return goIdle(this, state)
    connect.call(this)
    countWire(this.conn, state)
    // Runs before autocannon's own `end` listener, which reconnects.
    this.conn.prependListener('end', () => {
      if (this.pipelinedRequests.size() > 0) this.parser.finish()
      if (this.pipelinedRequests.size() > 0) this.emit('connError', new Error('server closed the connection before the response was complete'))
    })
    return undefined
  }
}

/** What a corrected run shares between its clients. */
export function newRunState(onIdle = () => {}) {
  return { draining: false, onIdle, connections: 0, connectionsWithData: 0, bytesReceived: 0 }
}

// What the client saw on the wire: tells a server that sends but never ends its response apart
// from one that sends nothing.
function countWire(conn, state) {
  let received = 0
  state.connections += 1
  conn.on('data', (chunk) => {
    if (received === 0) state.connectionsWithData += 1
    received += chunk.length
    state.bytesReceived += chunk.length
  })
}

function goIdle(client, state) {
  // An idle client must not time out: autocannon's ticker would count a timeout for a request
  // that was never sent.
  client.timeoutTicker.clear()
  state.onIdle()
}

/**
 * One autocannon run with the correction. Stops issuing requests after `seconds`, waits for
 * the requests in flight (each ends with a response or a timeout), then stops.
 */
export async function runAutocannon({
  url,
  seconds,
  connections = 10,
  timeoutSeconds = 2,
  headers = { connection: 'close' },
  corrected = true,
}) {
  const latencies = []
  const clients = []
  let lastResponseAt = 0
  let drainStartedAt = 0
  let drained = () => {}
  const allIdle = new Promise((resolve) => {
    drained = resolve
  })
  const state = newRunState(() => {
    if (state.draining && clients.every((client) => client.pipelinedRequests.size() === 0)) drained()
  })

  const startedAt = performance.now()
  const instance = autocannon({
    url,
    connections,
    headers,
    timeout: timeoutSeconds,
    // A corrected run ends itself after the drain; its duration is only a bound.
    duration: corrected ? seconds + timeoutSeconds + 5 : seconds,
    sampleInt: 100,
    setupClient: corrected
      ? (client) => {
          clients.push(client)
          correctForClosingServer(client, state)
        }
      : undefined,
  })
  instance.on('response', (_client, _status, _bytes, responseTimeMs) => {
    latencies.push(responseTimeMs)
    lastResponseAt = performance.now()
  })

  if (corrected) {
    const deadline = setTimeout(() => {
      drainStartedAt = performance.now()
      state.draining = true
      for (const client of clients) if (client.pipelinedRequests.size() === 0) goIdle(client, state)
      state.onIdle()
    }, seconds * 1000)
    // Every request in flight ends with a response or its timeout; this bounds the wait anyway.
    const bound = new Promise((resolve) => setTimeout(resolve, (seconds + timeoutSeconds + 1) * 1000).unref())
    await Promise.race([allIdle, bound])
    clearTimeout(deadline)
    instance.stop()
  }
  const result = await instance
  const endedAt = performance.now()
  return {
    tool: 'autocannon',
    corrected,
    connections,
    seconds,
    timeoutSeconds,
    responses: latencies.length,
    requestsPerSecond: latencies.length === 0 ? 0 : round(latencies.length / ((lastResponseAt - startedAt) / 1000), 1),
    latencyMs: summarize(latencies),
    status2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    wire: corrected
      ? { connectionsOpened: state.connections, connectionsWithData: state.connectionsWithData, bytesReceived: state.bytesReceived }
      : null,
    drainSeconds: corrected && drainStartedAt ? round((endedAt - drainStartedAt) / 1000, 2) : null,
  }
}

/** `wrk -t2 -c10 -H 'Connection: close'` for `seconds` (whole seconds: wrk takes no fractions). */
export async function runWrk({ wrk, url, seconds, connections = 10, threads = 2, timeoutSeconds = 2 }) {
  const wholeSeconds = Math.max(1, Math.round(seconds))
  const args = [`-t${threads}`, `-c${connections}`, `-d${wholeSeconds}s`, '--timeout', `${timeoutSeconds}s`, '--latency', '-H', 'Connection: close', url]
  const child = spawnTracked(wrk, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    out += chunk
  })
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    out += chunk
  })
  const code = await new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', resolve)
  })
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${out.trim()}`)
  return { tool: 'wrk', connections, threads, seconds: wholeSeconds, ...parseWrk(out) }
}

export function parseWrk(text) {
  const number = (re) => {
    const m = re.exec(text)
    return m ? Number(m[1]) : 0
  }
  const duration = (re) => {
    const m = re.exec(text)
    return m ? toMs(Number(m[1]), m[2]) : null
  }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  return {
    requests: number(/(\d+) requests in/),
    requestsPerSecond: number(/Requests\/sec:\s+([\d.]+)/),
    latencyMs: {
      p50: duration(/^\s+50%\s+([\d.]+)(us|ms|s)\b/m),
      p99: duration(/^\s+99%\s+([\d.]+)(us|ms|s)\b/m),
      max: duration(/^\s+Latency\s+[\d.]+\w+\s+[\d.]+\w+\s+([\d.]+)(us|ms|s)\b/m),
    },
    socketErrors: socket
      ? { connect: Number(socket[1]), read: Number(socket[2]), write: Number(socket[3]), timeout: Number(socket[4]) }
      : { connect: 0, read: 0, write: 0, timeout: 0 },
    non2xx: number(/Non-2xx or 3xx responses: (\d+)/),
  }
}

function toMs(value, unit) {
  const scale = { us: 0.001, ms: 1, s: 1000 }[unit]
  return round(value * scale, 3)
}

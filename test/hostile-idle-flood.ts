// 1,000 connections that connect and send nothing: the real CLI queues and accepts a burst of
// them without losing a SYN, cuts each at the head deadline, and at the default cap they cannot
// keep a scrape out.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import { stopChild } from './fixtures/exporter.js'
import { hostileEndpoint, METRICS, openConnections, raiseFdLimit, whenClosed } from './fixtures/hostile-clients.js'
import { startCli, startFlood } from './fixtures/hostile-processes.js'
import { assertScrapes, startScraper } from './fixtures/hostile-scrape.js'

const IDLE = 1000
// The CLI's head deadline (src/commands.ts).
const HEAD_TIMEOUT_MS = 5000

function somaxconn(): number {
  return Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'))
}

t.test('1,000 idle connections at once, to the real CLI: all queued and accepted, scrapes stay fast, each cut at 5 s', { timeout: 15000 }, async (t) => {
  // Each end of the thousand connections lives in a child (the CLI, the flood), which inherit this limit.
  raiseFdLimit(t, IDLE + 500)
  const file = join(t.testdir(), 'metrics.prom')
  writeFileSync(file, METRICS)
  const { child, port } = await startCli(t, ['--no-collector', '--metrics-file', file, '--max-connections', String(2 * IDLE)])
  const scraper = await startScraper(t, port)

  const from = Date.now()
  const flood = startFlood(t, port, IDLE)
  // A burst larger than Node's default listen backlog (511) loses SYNs, retried a second later.
  const connectedMs = await flood.connected
  if (somaxconn() >= IDLE) t.ok(connectedMs < 900, `all ${IDLE} connected in ${connectedMs} ms: no SYN was dropped`)
  else t.comment(`net.core.somaxconn is ${somaxconn()}: the kernel caps the backlog below this burst`)
  await flood.closed
  const to = Date.now()
  const idle = await flood.stop()
  const scrapes = await scraper.stop()

  t.same(idle.filter((c) => c.bytes > 0 || !c.ended || c.error !== undefined), [], 'each closed with a FIN and no byte')
  // Times from when the flood began: none was accepted before it, all were within connectedMs
  // (plus the event-loop turns it took to accept them), and the sweep that enforces deadlines
  // runs every 250 ms at this deadline.
  const cuts = idle.map((c) => c.closeMs)
  t.ok(Math.min(...cuts) >= HEAD_TIMEOUT_MS, `the first cut ${Math.min(...cuts)} ms after the flood began`)
  t.ok(Math.max(...cuts) < HEAD_TIMEOUT_MS + connectedMs + 750, `the last ${Math.max(...cuts)} ms after it began`)
  assertScrapes(t, scrapes, METRICS, { from, to, atLeast: 40, label: `beside ${IDLE} idle connections` })
  t.same(await stopChild(child), { code: 0, signal: null }, 'the CLI stops cleanly')
})

t.test('1,000 idle connections at the default cap of 512: the excess is refused, then a scrape evicts the oldest', { timeout: 15000 }, async (t) => {
  raiseFdLimit(t, 2 * IDLE + 500)
  const evictAfterMs = 300
  const hostile = await hostileEndpoint(t, { evictAfterMs })
  const { port, endpoint, accepted } = hostile
  const cap = 512

  const from = Date.now()
  const idle = await openConnections(t, hostile, IDLE)
  const refusedAt = performance.now()
  t.same(endpoint.stats(), { responses: 0, byStatus: {}, open: cap, rejected: IDLE - cap }, 'the cap held, the excess refused')
  let closed = 0
  await new Promise<void>((resolve) => {
    for (const socket of idle) void whenClosed(socket).then(() => ++closed === IDLE - cap && resolve())
  })
  t.ok(performance.now() - refusedAt < 200, `the ${IDLE - cap} refused were closed as they came (${Math.round(performance.now() - refusedAt)} ms)`)

  // Until the held connections have been open evictAfterMs, the cap refuses newcomers: a scrape too.
  await delay(evictAfterMs)
  const oldest = accepted[0]!
  const scraper = await startScraper(t, port)
  t.equal(oldest.destroyed, true, 'the first scrape evicted the oldest idle connection')
  await delay(1000)
  const to = Date.now()
  const scrapes = await scraper.stop()
  assertScrapes(t, scrapes, METRICS, { from, to, atLeast: 8, label: `beside ${cap} idle connections holding the cap` })
  const stats = endpoint.stats()
  t.equal(stats.rejected, IDLE - cap + 1, 'one eviction: after it, each scrape finds the room the last one left')
  t.equal(stats.byStatus[200], scrapes.length, 'only the scrapes were answered')
})

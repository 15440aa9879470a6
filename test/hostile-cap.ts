// More connections than the cap. A burst beyond it is closed as it arrives while the cap's worth
// is served; a client that keeps the cap full of idle connections loses the oldest to each
// newcomer once they have been open evictAfterMs, so it cannot keep scrapes out.
import t from 'tap'
import { MetricsReply } from '../src/server/response.js'
import { hostileEndpoint, METRICS, openConnections, problemOf, whenClosed } from './fixtures/hostile-clients.js'
import { startFlood } from './fixtures/hostile-processes.js'
import { connectTo, exchange } from './fixtures/http-client.js'
import { whileScraping } from './fixtures/hostile-scrape.js'

const OK = new MetricsReply(Buffer.from(METRICS)).bytes(false, false)

t.test('a burst beyond the cap is closed at once, the cap’s worth still served', { timeout: 15000 }, async (t) => {
  const cap = 100
  const excess = 400
  // Long enough that none of the cap's worth can be evicted on a slow machine: this is the cap alone.
  const hostile = await hostileEndpoint(t, { maxConnections: cap, evictAfterMs: 5000 })
  const { port, endpoint } = hostile
  const served = await openConnections(t, hostile, cap)

  const flood = startFlood(t, port, excess)
  await flood.connected
  await flood.closed
  const refused = await flood.stop()
  const afterConnect = refused.map((c) => c.closeMs - c.connectMs)
  t.same(refused.filter((c) => c.bytes > 0), [], `none of the ${excess} got a byte`)
  t.ok(Math.max(...afterConnect) < 100, `each closed within ${Math.max(...afterConnect)} ms of its connect`)
  t.equal(endpoint.stats().rejected, excess, 'the endpoint counted each')

  // A scrape is one connection more: refused at once too, rather than left waiting.
  const scrape = await connectTo(port)
  const started = performance.now()
  const refusedScrape = exchange(scrape)
  scrape.write('GET /metrics HTTP/1.1\r\n\r\n')
  const result = await refusedScrape
  t.equal(result.data.length, 0, `a scrape while the cap is full is refused, in ${Math.round(performance.now() - started)} ms`)

  const answers = await Promise.all(
    served.map((client) => {
      const done = exchange(client)
      client.end('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
      return done
    }),
  )
  t.same(
    answers.map((answer, i) => problemOf(answer, OK, `client ${i}`)).filter((problem) => problem !== undefined),
    [],
    `the cap's worth, ${cap} connections, each served in full`,
  )
  await hostile.allClosed()
  t.same(endpoint.stats(), { responses: cap, byStatus: { 200: cap }, open: 0, rejected: excess + 1 }, 'nothing else answered, nothing left open')
})

t.test('a client that keeps the cap full of idle connections: each scrape evicts the oldest', { timeout: 15000 }, async (t) => {
  const cap = 50
  const evictAfterMs = 200
  const hostile = await hostileEndpoint(t, { maxConnections: cap, evictAfterMs })
  const { port, endpoint } = hostile
  let holding = true
  let reconnects = 0
  // Each connection the endpoint closes is replaced at once, so the cap stays full.
  const hold = async (): Promise<void> => {
    const [client] = await openConnections(t, hostile, 1, 1)
    await whenClosed(client!)
    if (!holding) return
    reconnects++
    return hold()
  }
  const holders = Array.from({ length: cap }, hold)
  // Scrapes further apart than evictAfterMs (Prometheus scrapes every 15 to 60 s): after an
  // eviction the replacements are new, and the next scrape must find an old one to evict.
  const { scrapes } = await whileScraping(
    t,
    port,
    `with ${cap} idle connections holding the cap`,
    () => new Promise((resolve) => setTimeout(resolve, 2500)),
    { everyMs: 300, atLeast: 7 },
  )
  holding = false
  hostile.accepted.forEach((socket) => socket.destroy())
  await Promise.all(holders)
  const stats = endpoint.stats()
  t.equal(stats.byStatus[200], scrapes, 'every scrape answered')
  t.ok(reconnects >= scrapes - 1, `${reconnects} idle connections evicted and reopened`)
  t.ok(stats.rejected >= scrapes - 1, `${stats.rejected} closed by the cap`)
})

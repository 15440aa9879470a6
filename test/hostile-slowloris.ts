// Slowloris: 200 clients that each send one byte of a request head per second. The head
// deadline runs from connect, so a byte a second cannot keep a connection open past it.
import t from 'tap'
import { connectedAt, hostileEndpoint, openConnections, whenClosed } from './fixtures/hostile-clients.js'
import { whileScraping } from './fixtures/hostile-scrape.js'

const CLIENTS = 200
// What the endpoint runs with in production (src/commands.ts).
const HEAD_TIMEOUT_MS = 5000

t.test(`${CLIENTS} clients sending a byte a second are cut at the 5 s head deadline, scrapes unharmed`, { timeout: 15000 }, async (t) => {
  const hostile = await hostileEndpoint(t, { headTimeoutMs: HEAD_TIMEOUT_MS })
  const { port, endpoint, allClosed } = hostile
  // A head that would be valid if it ever ended.
  const head = `GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(100)}`

  const { result: cut, scrapes } = await whileScraping(
    t,
    port,
    `beside ${CLIENTS} slowloris clients`,
    async () => {
      const clients = await openConnections(t, hostile, CLIENTS)
      let sent = 0
      const drip = (): void => {
        for (const client of clients) if (!client.destroyed) client.write(head[sent]!)
        sent++
      }
      drip()
      const dripping = setInterval(drip, 1000)
      t.teardown(() => clearInterval(dripping))
      const closed = await Promise.all(
        clients.map(async (client) => {
          let bytes = 0
          client.on('data', (chunk: Buffer) => (bytes += chunk.length))
          await whenClosed(client)
          return { bytes, afterMs: performance.now() - connectedAt(client) }
        }),
      )
      clearInterval(dripping)
      return { closed, sent }
    },
    { everyMs: 200, atLeast: 20 },
  )
  await allClosed()

  t.ok(cut.sent >= 5, `${cut.sent} bytes dripped into each connection before the cut`)
  t.same(cut.closed.filter((client) => client.bytes > 0), [], 'none got an answer')
  const first = Math.min(...cut.closed.map((client) => client.afterMs))
  const last = Math.max(...cut.closed.map((client) => client.afterMs))
  // The sweep that enforces deadlines runs every 250 ms at this deadline.
  t.ok(first >= HEAD_TIMEOUT_MS - 20, `the earliest cut ${Math.round(first)} ms after its connect`)
  t.ok(last < HEAD_TIMEOUT_MS + 750, `the latest cut ${Math.round(last)} ms after its connect`)
  const stats = endpoint.stats()
  t.same(stats, { responses: scrapes, byStatus: { 200: scrapes }, open: 0, rejected: 0 }, 'only the scrapes were answered')
})

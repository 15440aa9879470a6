// Clients that reset the connection (RST) at every point of the exchange, mid-response above
// all: the endpoint drops the socket without a word in the log and goes on serving.
import { once } from 'node:events'
import type { Socket } from 'node:net'
import t from 'tap'
import { hostileEndpoint, METRICS, repeatFor, whenClosed } from './fixtures/hostile-clients.js'
import { connectTo } from './fixtures/http-client.js'
import { whileScraping } from './fixtures/hostile-scrape.js'

// About 2 MiB: a response that takes many writes, so there is a middle to reset in.
const BIG = METRICS.repeat(Math.ceil((2 * 1024 * 1024) / METRICS.length))
const GET = 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'

/** Resolves once `count` bytes have arrived on `client`. */
async function received(client: Socket, count: number): Promise<void> {
  let bytes = 0
  while (bytes < count) {
    const [chunk] = (await once(client, 'data')) as [Buffer]
    bytes += chunk.length
  }
}

// When each client resets, after what it did first.
const RESETS: ReadonlyArray<[string, (client: Socket) => Promise<void>]> = [
  ['half-way through the head', async (client) => {
    client.write('GET /metrics HT')
  }],
  ['right after the request', async (client) => {
    client.write(GET)
  }],
  ['after the first bytes of the response', async (client) => {
    client.write(GET)
    await received(client, 1)
  }],
  ['half-way through the response', async (client) => {
    client.write(GET)
    await received(client, BIG.length / 2)
  }],
  ['after sending the request twice', async (client) => {
    client.write(GET + GET)
  }],
]

t.test('clients that reset the connection at any point, mid-response above all', { timeout: 15000 }, async (t) => {
  const { port, endpoint, logs, allClosed } = await hostileEndpoint(t, {}, BIG)
  const { result: rounds } = await whileScraping(
    t,
    port,
    'beside clients resetting mid-response',
    () =>
      repeatFor(
        1500,
        async (round) => {
          const [, before] = RESETS[round % RESETS.length]!
          const client = await connectTo(port)
          await before(client)
          client.resetAndDestroy()
          await whenClosed(client)
        },
        4,
      ),
    // The scrapes get the 2 MiB file too: gzipped, as Prometheus asks for it.
    { body: BIG },
  )
  await allClosed()
  t.ok(rounds >= 100, `${rounds} connections reset`)
  t.equal(endpoint.stats().open, 0, 'every reset socket was dropped')
  t.same(logs, [], 'a reset is not worth a log line')
  const answered = endpoint.stats().byStatus[200] ?? 0
  t.ok(answered > rounds / 2, `${answered} responses begun before their reset (or scrapes)`)
})

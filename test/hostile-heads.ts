// Request heads that are too large, random, or not text: each gets its one error response and
// a clean close, and scrapes go on beside them.
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { BAD_REQUEST, HEADERS_TOO_LARGE, MetricsReply } from '../src/server/response.js'
import { hostileEndpoint, METRICS, problemOf, repeatFor } from './fixtures/hostile-clients.js'
import { createRandom } from './fixtures/hostile-fuzz.mjs'
import { connectTo, exchange, request } from './fixtures/http-client.js'
import { whileScraping } from './fixtures/hostile-scrape.js'

const TOO_LARGE = HEADERS_TOO_LARGE.bytes(false, false)
const BAD = BAD_REQUEST.bytes(false, false)
const ATTACK_MS = 1200

/** A head of exactly `size` bytes that would be a valid scrape if it were not too large. */
function headOf(size: number): string {
  const start = 'GET /metrics HTTP/1.1\r\nX-Pad: '
  return `${start}${'a'.repeat(size - start.length - 4)}\r\n\r\n`
}

t.test('heads of 8 KiB + 1 byte and of 1 MiB: a 431 each, read to the end, no reset', { timeout: 15000 }, async (t) => {
  const { port, endpoint } = await hostileEndpoint(t)
  const problems: string[] = []
  const heads = [headOf(8193), headOf(1024 * 1024)]
  const { result: rounds } = await whileScraping(t, port, 'beside oversized heads', () =>
    repeatFor(
      ATTACK_MS,
      async (round) => {
        const head = heads[round % 2]!
        const problem = problemOf(await request(port, head), TOO_LARGE, `${head.length}-byte head`)
        if (problem !== undefined) problems.push(problem)
      },
      8,
    ),
  )
  t.same(problems, [], `${rounds} oversized heads, each answered 431 and closed with a FIN`)
  t.equal(endpoint.stats().byStatus[431], rounds, 'each counted once')
})

t.test('random bytes: a 400 or a 431, never a crash or a reset', { timeout: 15000 }, async (t) => {
  const { port, endpoint } = await hostileEndpoint(t)
  const next = createRandom(0xbad5eed)
  const problems: string[] = []
  const statuses = new Set<number>()
  const { result: rounds, scrapes } = await whileScraping(t, port, 'beside random bytes', () =>
    repeatFor(
      ATTACK_MS,
      async (round) => {
        // Mostly short; sometimes past the head limit with no line end in it at all (a bad
        // request line is answered as soon as its line end arrives).
        const long = next() < 0.2
        const size = long ? 8192 + Math.floor(next() * 60000) : 1 + Math.floor(next() * 600)
        const bytes = Buffer.from(Array.from({ length: size }, () => Math.floor(next() * 256)))
        if (long) bytes.forEach((byte, i) => byte === 0x0a && (bytes[i] = 0x0b))
        const client = await connectTo(port)
        const done = exchange(client)
        client.end(bytes)
        const result = await done
        const expected = result.data.subarray(0, 12).toString() === 'HTTP/1.1 431' ? TOO_LARGE : BAD
        const problem = problemOf(result, expected, `round ${round}: ${size} random bytes`)
        if (problem === undefined) statuses.add(expected === BAD ? 400 : 431)
        else problems.push(problem)
      },
      8,
    ),
  )
  t.same(problems, [], `${rounds} random inputs, each a 400 or a 431 and a FIN`)
  t.same([...statuses].sort(), [400, 431], 'both answers came up')
  t.equal(endpoint.stats().responses, rounds + scrapes, 'one response a connection')
})

t.test('invalid UTF-8 and NUL bytes in the path: a 400 each', { timeout: 15000 }, async (t) => {
  const { port } = await hostileEndpoint(t)
  const paths = [
    '/metrics\x00',
    '/\x00metrics',
    '/met\x00rics',
    '\x00',
    '/m\xe9trics', // Latin-1, a lone byte >= 0x80
    '/\xc0\xafmetrics', // an overlong encoding of '/'
    '/\x80', // a continuation byte with no lead
    '/\xe2\x82', // a truncated sequence
    '/\xed\xa0\x80', // a UTF-16 surrogate
    '/\xf4\x90\x80\x80', // past U+10FFFF
    '/\xff\xfe',
    '/caf\xc3\xa9', // valid UTF-8, but not ASCII: not a valid request target either
  ]
  const problems: string[] = []
  const { result: rounds } = await whileScraping(t, port, 'beside bad paths', () =>
    repeatFor(ATTACK_MS, async (round) => {
      const path = paths[round % paths.length]!
      const result = await request(port, Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, 'latin1'))
      const problem = problemOf(result, BAD, JSON.stringify(path))
      if (problem !== undefined) problems.push(problem)
    }),
  )
  t.ok(rounds >= paths.length, `${rounds} requests`)
  t.same(problems, [], 'each a 400 and a FIN')
  const encoded = await request(port, 'GET /metrics%00 HTTP/1.1\r\n\r\n')
  t.match(encoded.data.toString(), /^HTTP\/1\.1 404 /, 'percent-encoded, a NUL is just a path that does not exist')
})

t.test('line endings: bare LF is a line end, a bare CR is not', { timeout: 15000 }, async (t) => {
  const { port, endpoint } = await hostileEndpoint(t)
  const reply = new MetricsReply(Buffer.from(METRICS))
  const plain = reply.bytes(false, false)
  const gzipped = reply.bytes(false, true)
  t.same(gzipped.subarray(gzipped.indexOf('\r\n\r\n') + 4), gzipSync(METRICS), 'the expected gzip body')
  const cases: Array<[string, string | string[], Buffer]> = [
    ['\\n only', 'GET /metrics HTTP/1.1\nHost: x\nAccept-Encoding: gzip\n\n', gzipped],
    ['mixed', 'GET /metrics HTTP/1.1\r\nHost: x\nAccept-Encoding: gzip\r\n\n', gzipped],
    ['\\n only, a byte per write', [...'GET /metrics HTTP/1.1\nHost: x\n\n'], plain],
    ['\\n then \\r\\n', 'GET /metrics HTTP/1.1\n\r\n', plain],
    ['bare CR in the request line', 'GET /metrics HTTP/1.1\r\r\n\r\n', BAD],
    ['bare CRs only, then the client ends', 'GET /metrics HTTP/1.1\rHost: x\r\r', BAD],
    ['bare CRs only, up to the head limit', `GET /metrics HTTP/1.1\r${'X-Pad: a\r'.repeat(1000)}`, TOO_LARGE],
  ]
  const problems: string[] = []
  await whileScraping(t, port, 'beside odd line endings', () =>
    repeatFor(ATTACK_MS, async (round) => {
      const [name, head, expected] = cases[round % cases.length]!
      const client = await connectTo(port)
      const done = exchange(client)
      if (Array.isArray(head)) await writeEach(client, head)
      else client.write(head)
      client.end()
      const problem = problemOf(await done, expected, name)
      if (problem !== undefined) problems.push(problem)
    }),
  )
  t.same(problems, [], 'each case answered as expected')
  t.equal(endpoint.stats().open, 0, 'all closed')
})

/** Writes each piece on its own, waiting for it to be flushed, so they arrive apart. */
async function writeEach(client: Socket, pieces: readonly string[]): Promise<void> {
  for (const piece of pieces) {
    if (!client.write(piece)) await once(client, 'drain')
    await new Promise((resolve) => setImmediate(resolve))
  }
}

// Bodies, chunked encoding, Content-Length with Transfer-Encoding, and pipelining. The endpoint
// answers the first request head of a connection and closes it, reading and dropping whatever
// else comes: no body is ever interpreted, so no second request can be smuggled in behind the
// first, and unread bytes never turn the close into a reset.
import { once } from 'node:events'
import t from 'tap'
import { BAD_REQUEST, HEALTHZ, METHOD_NOT_ALLOWED, MetricsReply } from '../src/server/response.js'
import { hostileEndpoint, METRICS, problemOf, repeatFor } from './fixtures/hostile-clients.js'
import { connectTo, exchange } from './fixtures/http-client.js'
import { whileScraping } from './fixtures/hostile-scrape.js'

const METRICS_REPLY = new MetricsReply(Buffer.from(METRICS))
const OK = METRICS_REPLY.bytes(false, false)
const OK_HEAD = METRICS_REPLY.bytes(true, false)
const NOT_ALLOWED = METHOD_NOT_ALLOWED.bytes(false, false)
const BAD = BAD_REQUEST.bytes(false, false)
const ATTACK_MS = 1200

interface Case {
  name: string
  /** Written at once. */
  request: string
  /** Written only once the answer has arrived: more of the body, or another request. */
  after?: string | Buffer
  expected: Buffer
}

/** Runs each case on its own connection, in turn, until ATTACK_MS; returns what went wrong. */
async function runCases(port: number, cases: readonly Case[]): Promise<{ rounds: number; problems: string[] }> {
  const problems: string[] = []
  const rounds = await repeatFor(ATTACK_MS, async (round) => {
    const { name, request, after, expected } = cases[round % cases.length]!
    const client = await connectTo(port)
    const done = exchange(client)
    client.write(request)
    if (after !== undefined) {
      await once(client, 'data')
      client.write(after)
    }
    client.end()
    const problem = problemOf(await done, expected, name)
    if (problem !== undefined) problems.push(problem)
  })
  return { rounds, problems }
}

t.test('requests with a body: answered by their head, the body read and dropped', { timeout: 15000 }, async (t) => {
  const { port, endpoint } = await hostileEndpoint(t)
  const cases: Case[] = [
    { name: 'GET with a body', request: 'GET /metrics HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world', expected: OK },
    {
      name: 'GET with 1 MiB of body after the answer',
      request: 'GET /metrics HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n',
      after: Buffer.alloc(1024 * 1024, 'x'),
      expected: OK,
    },
    { name: 'GET with less body than announced', request: 'GET /metrics HTTP/1.1\r\nContent-Length: 1000000\r\n\r\nshort', expected: OK },
    { name: 'HEAD with a body', request: 'HEAD /metrics HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody', expected: OK_HEAD },
    { name: 'POST with a body', request: 'POST /metrics HTTP/1.1\r\nContent-Length: 7\r\n\r\na=1&b=2', expected: NOT_ALLOWED },
    { name: 'PUT, the body after the answer', request: 'PUT /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\n', after: '12345', expected: NOT_ALLOWED },
  ]
  const { result, scrapes } = await whileScraping(t, port, 'beside requests with bodies', () => runCases(port, cases))
  t.same(result.problems, [], `${result.rounds} requests with bodies, each answered once and closed with a FIN`)
  t.equal(endpoint.stats().responses, result.rounds + scrapes, 'one response a connection')
  t.equal(endpoint.stats().open, 0, 'all closed')
})

t.test('chunked, and Content-Length with Transfer-Encoding: one answer, nothing smuggled', { timeout: 15000 }, async (t) => {
  const { port, endpoint } = await hostileEndpoint(t)
  const smuggled = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
  const cases: Case[] = [
    {
      name: 'chunked',
      request: `GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
      expected: OK,
    },
    { name: 'chunked, never finished', request: 'GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffff\r\nabc', expected: OK },
    {
      name: 'a request inside the chunks',
      request: `GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`,
      expected: OK,
    },
    {
      name: 'CL.TE: Content-Length first, a request after the last chunk',
      request: `GET /metrics HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
      expected: OK,
    },
    {
      name: 'TE.CL: Transfer-Encoding first, a request inside the Content-Length',
      request: `GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${(smuggled.length + 2).toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`,
      expected: OK,
    },
    {
      name: 'two different Content-Lengths',
      request: `GET /metrics HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
      expected: OK,
    },
    {
      name: 'an obfuscated Transfer-Encoding',
      request: `GET /metrics HTTP/1.1\r\nTransfer-Encoding : xchunked\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n${smuggled}`,
      expected: OK,
    },
    {
      name: 'POST, chunked, a request after the answer',
      request: 'POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n',
      after: `0\r\n\r\n${smuggled}`,
      expected: NOT_ALLOWED,
    },
  ]
  const { result, scrapes } = await whileScraping(t, port, 'beside chunked and CL+TE requests', () => runCases(port, cases))
  t.same(result.problems, [], `${result.rounds} requests, each answered once and closed with a FIN`)
  t.equal(endpoint.stats().responses, result.rounds + scrapes, 'one response a connection')
  t.equal(endpoint.stats().open, 0, 'all closed')
})

t.test('pipelined requests: only the first is answered, then a clean close', { timeout: 15000 }, async (t) => {
  const { port, endpoint } = await hostileEndpoint(t)
  const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`
  const cases: Case[] = [
    { name: 'two in one write', request: get('/metrics') + get('/healthz'), expected: OK },
    { name: 'a hundred in one write', request: get('/metrics').repeat(100), expected: OK },
    { name: 'the second after the answer', request: get('/healthz'), after: get('/metrics'), expected: HEALTHZ.bytes(false, false) },
    { name: 'HEAD first', request: `HEAD /metrics HTTP/1.1\r\n\r\n${get('/metrics')}`, expected: OK_HEAD },
    { name: 'a bad one first', request: `GET /metrics\r\n${get('/metrics')}`, expected: BAD },
    { name: 'bare LF heads', request: 'GET /metrics HTTP/1.1\n\nGET /healthz HTTP/1.1\n\n', expected: OK },
  ]
  const { result, scrapes } = await whileScraping(t, port, 'beside pipelined requests', () => runCases(port, cases))
  t.same(result.problems, [], `${result.rounds} connections with pipelined requests, one answer each, then a FIN`)
  t.equal(endpoint.stats().responses, result.rounds + scrapes, 'one response a connection')
  t.equal(endpoint.stats().open, 0, 'all closed')
})

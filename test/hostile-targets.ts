// Request targets a proxy or an old client would send: CONNECT, absolute-form, asterisk-form,
// and HTTP/0.9's version-less request line. The endpoint is no proxy: it serves its own routes
// whatever host a target names, tunnels nothing, and answers a request line it cannot serve as
// soon as that line has arrived.
import { once } from 'node:events'
import type { Socket } from 'node:net'
import t from 'tap'
import { BAD_REQUEST, INDEX, METHOD_NOT_ALLOWED, MetricsReply, NOT_FOUND } from '../src/server/response.js'
import { hostileEndpoint, METRICS, problemOf, repeatFor } from './fixtures/hostile-clients.js'
import { connectTo, exchange } from './fixtures/http-client.js'
import { whileScraping } from './fixtures/hostile-scrape.js'

const OK = new MetricsReply(Buffer.from(METRICS)).bytes(false, false)
const NOT_ALLOWED = METHOD_NOT_ALLOWED.bytes(false, false)
const BAD = BAD_REQUEST.bytes(false, false)
const ATTACK_MS = 1200
// The start of a TLS ClientHello, as a client sends it through a CONNECT tunnel.
const CLIENT_HELLO = Buffer.from('160301020001000200030300', 'hex')

interface Case {
  name: string
  request: string | Buffer
  expected: Buffer
  /** The client keeps its side open, as a client waiting for an answer does. */
  waits?: boolean
}

/** Runs the cases in turn until ATTACK_MS; each must be answered well before the head deadline. */
async function runCases(port: number, cases: readonly Case[]): Promise<{ rounds: number; problems: string[]; slowestMs: number }> {
  const problems: string[] = []
  let slowestMs = 0
  const rounds = await repeatFor(ATTACK_MS, async (round) => {
    const { name, request, expected, waits = false } = cases[round % cases.length]!
    const client = await connectTo(port)
    const done = exchange(client)
    const started = performance.now()
    if (waits) client.write(request)
    else client.end(request)
    const problem = problemOf(await done, expected, name)
    slowestMs = Math.max(slowestMs, performance.now() - started)
    if (problem !== undefined) problems.push(problem)
  })
  return { rounds, problems, slowestMs }
}

t.test('CONNECT: a 405, no tunnel, whatever follows', { timeout: 15000 }, async (t) => {
  const { port, endpoint } = await hostileEndpoint(t)
  const cases: Case[] = [
    { name: 'CONNECT', request: 'CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n', expected: NOT_ALLOWED },
    {
      name: 'CONNECT then a TLS ClientHello',
      request: Buffer.concat([Buffer.from('CONNECT runner:443 HTTP/1.1\r\n\r\n'), CLIENT_HELLO]),
      expected: NOT_ALLOWED,
    },
    {
      name: 'CONNECT then a request for the tunnel',
      request: 'CONNECT runner:9091 HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n',
      expected: NOT_ALLOWED,
    },
    { name: 'CONNECT, its head never finished', request: 'CONNECT runner:443 HTTP/1.1\r\nHost: runner', expected: NOT_ALLOWED, waits: true },
  ]
  const { result, scrapes } = await whileScraping(t, port, 'beside CONNECT requests', () => runCases(port, cases))
  t.same(result.problems, [], `${result.rounds} CONNECTs, each a 405 and a FIN`)
  t.ok(result.slowestMs < 1000, `each answered at once (the slowest in ${Math.round(result.slowestMs)} ms)`)
  t.equal(endpoint.stats().responses, result.rounds + scrapes, 'one response a connection')
})

t.test('absolute-form and asterisk-form targets', { timeout: 15000 }, async (t) => {
  const { port } = await hostileEndpoint(t)
  const cases: Case[] = [
    { name: 'http://127.0.0.1:port/metrics', request: `GET http://127.0.0.1:${port}/metrics HTTP/1.1\r\n\r\n`, expected: OK },
    { name: 'HTTPS://, with a query', request: 'GET HTTPS://runner/metrics?match[]=up HTTP/1.1\r\n\r\n', expected: OK },
    { name: 'another host: still our own /metrics', request: 'GET http://other.example/metrics HTTP/1.1\r\n\r\n', expected: OK },
    { name: 'a host and no path', request: 'GET http://runner HTTP/1.1\r\n\r\n', expected: INDEX.bytes(false, false) },
    { name: 'a path that is not ours', request: 'GET http://runner/admin HTTP/1.1\r\n\r\n', expected: NOT_FOUND.bytes(false, false) },
    { name: '//metrics is a path', request: 'GET //metrics HTTP/1.1\r\n\r\n', expected: NOT_FOUND.bytes(false, false) },
    { name: 'another scheme', request: 'GET ftp://runner/metrics HTTP/1.1\r\n\r\n', expected: BAD },
    { name: 'no authority', request: 'GET http:///metrics HTTP/1.1\r\n\r\n', expected: BAD },
    { name: 'authority-form with GET', request: 'GET runner:9091 HTTP/1.1\r\n\r\n', expected: BAD },
    { name: 'GET *', request: 'GET * HTTP/1.1\r\n\r\n', expected: BAD },
    { name: 'HEAD *', request: 'HEAD * HTTP/1.1\r\n\r\n', expected: BAD },
    { name: 'OPTIONS *', request: 'OPTIONS * HTTP/1.1\r\n\r\n', expected: NOT_ALLOWED },
  ]
  const { result } = await whileScraping(t, port, 'beside absolute- and asterisk-form targets', () => runCases(port, cases))
  t.same(result.problems, [], `${result.rounds} requests, each answered as expected`)
})

t.test('HTTP/0.9: a version-less request line is a 400 as soon as the line ends', { timeout: 15000 }, async (t) => {
  // The production head deadline: an answer that waited for it would take 5 s.
  const { port, endpoint } = await hostileEndpoint(t, { headTimeoutMs: 5000 })
  const cases: Case[] = [
    // What an HTTP/0.9 client sends: one line, then it waits for the body.
    { name: 'GET /metrics CRLF', request: 'GET /metrics\r\n', expected: BAD, waits: true },
    { name: 'GET /metrics LF', request: 'GET /metrics\n', expected: BAD, waits: true },
    { name: 'GET / CRLF, then more', request: 'GET /\r\nHost: x\r\n', expected: BAD, waits: true },
    { name: 'GET /metrics CRLF CRLF', request: 'GET /metrics\r\n\r\n', expected: BAD },
    { name: 'GET /metrics, then the client ends', request: 'GET /metrics', expected: BAD },
  ]
  const { result, scrapes } = await whileScraping(t, port, 'beside HTTP/0.9 requests', () => runCases(port, cases))
  t.same(result.problems, [], `${result.rounds} HTTP/0.9 requests, each a 400 and a FIN`)
  t.ok(result.slowestMs < 1000, `each answered at once (the slowest in ${Math.round(result.slowestMs)} ms)`)
  t.same(endpoint.stats().byStatus, { 200: scrapes, 400: result.rounds }, 'a 400 each, and the scrapes')

  // A line end split from its line, and the line split across writes: the verdict waits for it.
  const accepted = once(endpoint.server, 'connection') as Promise<[Socket]>
  const client = await connectTo(port)
  const done = exchange(client)
  const [server] = await accepted
  for (const piece of ['GET /met', 'rics\r', '\n']) {
    client.write(piece)
    await once(server, 'data')
  }
  t.equal(problemOf(await done, BAD, 'split'), undefined, 'a 400 once the line end arrived')
})

// Each route and method over a real socket, byte for byte.
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { connectTo, exchange, get, parseResponse, request, startEndpoint } from './fixtures/http-client.js'

// A non-ASCII runner name: Content-Length must count its bytes, not its characters.
const BODY = 'github_runner_info{runner_name="bürö-€-1",runner_type="standard",version="0.1.0"} 1\n'
const BODY_BYTES = Buffer.byteLength(BODY)

const METRICS_HEAD =
  'HTTP/1.1 200 OK\r\n' +
  'Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n' +
  `Content-Length: ${BODY_BYTES}\r\n` +
  'Connection: close\r\n' +
  '\r\n'

function text(status: string, body: string, extra = ''): string {
  return (
    `HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\n${extra}` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  )
}

async function setup(t: Test) {
  const dir = t.testdir({ 'metrics.prom': BODY })
  return startEndpoint(t, { metricsFile: join(dir, 'metrics.prom') })
}

t.test('GET /metrics: exactly the four headers and the body, Content-Length in bytes', async (t) => {
  const { port, endpoint } = await setup(t)
  t.not(BODY_BYTES, BODY.length)
  const reply = await get(port)
  t.equal(reply.data.toString('utf8'), METRICS_HEAD + BODY)
  t.equal(reply.ended, true, 'the server closed with a FIN')
  t.equal(reply.error, undefined)
  t.same(endpoint.stats().byStatus, { 200: 1 })
})

t.test('HEAD /metrics: the same headers, no body', async (t) => {
  const { port } = await setup(t)
  t.equal((await get(port, '/metrics', [], 'HEAD')).data.toString('latin1'), METRICS_HEAD)
})

t.test('HTTP/1.0, bare-LF heads, query strings and absolute-form targets all reach /metrics', async (t) => {
  const { port } = await setup(t)
  const heads = [
    'GET /metrics HTTP/1.0\r\n\r\n',
    'GET /metrics HTTP/1.1\nHost: x\n\n',
    'GET /metrics?name[]=up HTTP/1.1\r\n\r\n',
    'GET http://127.0.0.1/metrics HTTP/1.1\r\n\r\n',
  ]
  for (const head of heads) t.equal((await request(port, head)).data.toString('utf8'), METRICS_HEAD + BODY, head)
})

t.test('GET and HEAD of / and /healthz', async (t) => {
  const { port } = await setup(t)
  const index = parseResponse((await get(port, '/')).data)
  t.equal(index.status, 200)
  t.same(index.headerLines, [
    'Content-Type: text/html; charset=utf-8',
    `Content-Length: ${index.body.length}`,
    'Connection: close',
  ])
  t.match(index.body.toString(), /<a href="\/metrics">/)
  const indexHead = (await get(port, '/', [], 'HEAD')).data
  t.equal(indexHead.toString(), (await get(port, '/')).data.toString().replace(/<!doctype[^]*$/, ''))

  t.equal((await get(port, '/healthz')).data.toString(), text('200 OK', 'ok\n'))
  t.equal((await get(port, '/healthz', [], 'HEAD')).data.toString(), text('200 OK', 'ok\n').slice(0, -3))
})

t.test('404, 405, 400 and 431, each a small text body with Connection: close', async (t) => {
  const { port, endpoint } = await setup(t)
  t.equal((await get(port, '/nope')).data.toString(), text('404 Not Found', 'not found: try /metrics\n'))
  t.equal(
    (await get(port, '/nope', [], 'HEAD')).data.toString(),
    text('404 Not Found', 'not found: try /metrics\n').replace(/not found: try \/metrics\n$/, ''),
    'HEAD of a 404 has no body',
  )
  const notAllowed = text('405 Method Not Allowed', 'method not allowed\n', 'Allow: GET, HEAD\r\n')
  t.equal((await get(port, '/metrics', ['Content-Length: 3'], 'POST')).data.toString(), notAllowed)
  t.equal((await request(port, 'CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n')).data.toString(), notAllowed)
  const bad = text('400 Bad Request', 'bad request\n')
  t.equal((await request(port, 'GET /metrics\r\n\r\n')).data.toString(), bad, 'HTTP/0.9 style')
  t.equal((await request(port, 'GET * HTTP/1.1\r\n\r\n')).data.toString(), bad, 'asterisk-form')
  t.equal((await request(port, Buffer.from('GET /\x00\xff HTTP/1.1\r\n\r\n', 'latin1'))).data.toString(), bad)
  t.equal((await request(port, 'garbage\r\n\r\n')).data.toString(), bad)
  t.same(endpoint.stats().byStatus, { 404: 2, 405: 2, 400: 4 })
})

t.test('a head of exactly maxHeadBytes is served; one byte more is a 431', async (t) => {
  const { port } = await setup(t)
  const headOf = (size: number) => {
    const start = 'GET /metrics HTTP/1.1\r\nX-Pad: '
    return `${start}${'a'.repeat(size - start.length - 4)}\r\n\r\n`
  }
  t.equal(headOf(8192).length, 8192)
  t.equal((await request(port, headOf(8192))).data.toString(), METRICS_HEAD + BODY, 'in one write')
  const split = headOf(8192)
  t.equal((await request(port, [split.slice(0, 5000), split.slice(5000)])).data.toString(), METRICS_HEAD + BODY)
  const tooLarge = text('431 Request Header Fields Too Large', 'request header fields too large\n')
  t.equal((await request(port, headOf(8193))).data.toString(), tooLarge)
  const oneMiB = (await request(port, headOf(1024 * 1024))).data.toString()
  t.equal(oneMiB, tooLarge, 'a 1 MiB head: a 431, read to the end without a reset')
})

t.test('a head that arrives in pieces is put together, wherever it is split', async (t) => {
  const { port, endpoint } = await setup(t)
  const head = 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n'
  for (const at of [1, 5, 21, 22, 23, head.length - 3, head.length - 2, head.length - 1]) {
    // Send the second piece only once the server has read the first, so they arrive apart.
    const accepted = once(endpoint.server, 'connection') as Promise<[Socket]>
    const client = await connectTo(port)
    const [server] = await accepted
    const done = exchange(client)
    const received = once(server, 'data')
    client.write(head.slice(0, at))
    await received
    client.write(head.slice(at))
    t.equal((await done).data.toString(), METRICS_HEAD + BODY, `split at ${at}`)
  }
  // The bounded buffer still applies when the head comes in pieces.
  const accepted = once(endpoint.server, 'connection') as Promise<[Socket]>
  const client = await connectTo(port)
  const [server] = await accepted
  const done = exchange(client)
  const received = once(server, 'data')
  client.write('GET /metrics HTTP/1.1\r\n')
  await received
  client.write(`X-Pad: ${'a'.repeat(9000)}\r\n\r\n`)
  t.match((await done).data.toString(), /^HTTP\/1\.1 431 /)
})

t.test('gzip when asked: compressed body, Content-Encoding and Vary', async (t) => {
  const { port } = await setup(t)
  for (const value of ['gzip', 'deflate, gzip;q=0.5', '*']) {
    const response = parseResponse((await get(port, '/metrics', [`Accept-Encoding: ${value}`])).data)
    t.same(response.headerLines, [
      'Content-Type: text/plain; version=0.0.4; charset=utf-8',
      'Content-Encoding: gzip',
      'Vary: Accept-Encoding',
      `Content-Length: ${response.body.length}`,
      'Connection: close',
    ])
    t.equal(gunzipSync(response.body).toString(), BODY, value)
  }
  const head = parseResponse((await get(port, '/metrics', ['Accept-Encoding: gzip'], 'HEAD')).data)
  t.equal(head.headers['content-encoding'], 'gzip')
  t.equal(head.body.length, 0)
  const plain = parseResponse((await get(port, '/metrics', ['Accept-Encoding: gzip;q=0, br'])).data)
  t.equal(plain.headers['content-encoding'], undefined, 'not when gzip is refused')
  t.equal(plain.body.toString(), BODY)
})

t.test('pipelined requests: only the first is answered, then a clean close', async (t) => {
  const { port, endpoint } = await setup(t)
  const reply = await request(port, 'GET /metrics HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n')
  t.equal(reply.data.toString(), METRICS_HEAD + BODY)
  t.equal(reply.error, undefined)
  t.equal(endpoint.stats().responses, 1)
})

t.test('a client that half-closes after its request still gets the answer', async (t) => {
  const { port } = await setup(t)
  const client = await connectTo(port)
  const done = exchange(client)
  client.end('GET /metrics HTTP/1.1\r\n\r\n')
  t.equal((await done).data.toString(), METRICS_HEAD + BODY)
})

t.test('a client that ends with an incomplete head gets a 400; one that sent nothing gets nothing', async (t) => {
  const { port, endpoint } = await setup(t)
  const client = await connectTo(port)
  const done = exchange(client)
  client.end('GET /metrics HTTP/1.1\r\nHost: x\r\n')
  t.equal((await done).data.toString(), text('400 Bad Request', 'bad request\n'))

  const probe = await connectTo(port)
  const probed = exchange(probe)
  probe.end()
  const result = await probed
  t.equal(result.data.length, 0)
  t.equal(result.ended, true, 'closed cleanly')
  t.same(endpoint.stats().byStatus, { 400: 1 }, 'a TCP probe is not counted as a response')
})

t.test('a client that resets the connection does not disturb the next one', async (t) => {
  const { port, endpoint } = await setup(t)
  for (let i = 0; i < 20; i++) {
    const client = await connectTo(port)
    client.write('GET /metrics HTTP/1.1\r\n\r\n')
    client.resetAndDestroy()
  }
  t.equal((await get(port)).data.toString(), METRICS_HEAD + BODY)
  t.ok(endpoint.stats().responses >= 1)
})

t.test('the body follows the file, and stats count responses by status', async (t) => {
  const { port, endpoint } = await setup(t)
  const dir = t.testdir({ 'metrics.prom': 'a 1\n' })
  const other = await startEndpoint(t, { metricsFile: join(dir, 'metrics.prom') })
  t.equal(parseResponse((await get(other.port)).data).body.toString(), 'a 1\n')
  writeFileSync(join(dir, 'metrics.prom'), 'a 22\n')
  t.equal(parseResponse((await get(other.port)).data).body.toString(), 'a 22\n')
  await get(port, '/nope')
  await get(port)
  const stats = endpoint.stats()
  t.equal(stats.responses, 2)
  t.same(stats.byStatus, { 200: 1, 404: 1 })
  t.equal(stats.rejected, 0)
})

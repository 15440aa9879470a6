import { gunzipSync } from 'node:zlib'
import t from 'tap'
import {
  BAD_REQUEST,
  HEADERS_TOO_LARGE,
  HEALTHZ,
  INDEX,
  METHOD_NOT_ALLOWED,
  MetricsReply,
  NOT_FOUND,
  unavailableReply,
} from '../src/server/response.js'

const METRICS_HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n'

t.test('a metrics reply is the exact headers and the body in one buffer', async (t) => {
  const body = 'github_runner_info{runner_name="büro-ß-1"} 1\n'
  const reply = new MetricsReply(Buffer.from(body))
  t.equal(reply.status, 200)
  const bytes = Buffer.byteLength(body)
  t.not(bytes, body.length, 'the body has multi-byte characters')
  const head = `${METRICS_HEAD}Content-Length: ${bytes}\r\nConnection: close\r\n\r\n`
  t.equal(reply.bytes(false, false).toString('utf8'), head + body, 'Content-Length counts bytes')
  t.equal(reply.bytes(true, false).toString('latin1'), head, 'HEAD: the same header, no body')
  t.equal(reply.bytes(false, false), reply.bytes(false, false), 'the same buffer every time')
  t.equal(
    reply.bytes(true, false).buffer,
    reply.bytes(false, false).buffer,
    'the HEAD bytes are a view of the GET bytes, not a copy',
  )
})

t.test('the gzip variant is built once, on first use, and decompresses to the body', async (t) => {
  const body = Buffer.from('a_metric 1\n'.repeat(1000))
  const reply = new MetricsReply(body)
  const full = reply.bytes(false, true)
  t.equal(reply.bytes(false, true), full, 'compressed once per version')
  const end = full.indexOf('\r\n\r\n') + 4
  const compressed = full.subarray(end)
  t.equal(
    full.toString('latin1', 0, end),
    `${METRICS_HEAD}Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n` +
      `Content-Length: ${compressed.length}\r\nConnection: close\r\n\r\n`,
  )
  t.ok(compressed.length < body.length / 10, 'it is compressed')
  t.same(gunzipSync(compressed), body)
  t.equal(reply.bytes(true, true).toString('latin1'), full.toString('latin1', 0, end), 'HEAD with gzip')
})

t.test('HEAD alone builds the gzip variant too, with the compressed length', async (t) => {
  const body = Buffer.from('x 1\n'.repeat(100))
  const reply = new MetricsReply(body)
  const head = reply.bytes(true, true).toString('latin1')
  const length = Number(/Content-Length: (\d+)/.exec(head)?.[1])
  t.equal(length, reply.bytes(false, true).length - head.length)
})

t.test('fixed replies are byte-exact', async (t) => {
  const text = (status: string, body: string, extra = '') =>
    `HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\n${extra}` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  t.equal(HEALTHZ.bytes(false, false).toString(), text('200 OK', 'ok\n'))
  t.equal(NOT_FOUND.bytes(false, false).toString(), text('404 Not Found', 'not found: try /metrics\n'))
  t.equal(BAD_REQUEST.bytes(false, false).toString(), text('400 Bad Request', 'bad request\n'))
  t.equal(
    METHOD_NOT_ALLOWED.bytes(false, false).toString(),
    text('405 Method Not Allowed', 'method not allowed\n', 'Allow: GET, HEAD\r\n'),
  )
  t.equal(
    HEADERS_TOO_LARGE.bytes(false, false).toString(),
    text('431 Request Header Fields Too Large', 'request header fields too large\n'),
  )
  t.same(
    [HEALTHZ, NOT_FOUND, BAD_REQUEST, METHOD_NOT_ALLOWED, HEADERS_TOO_LARGE, INDEX].map((reply) => reply.status),
    [200, 404, 400, 405, 431, 200],
  )
  t.equal(HEALTHZ.bytes(true, false).toString(), text('200 OK', 'ok\n').replace(/ok\n$/, ''), 'HEAD')
  t.equal(HEALTHZ.bytes(false, true), HEALTHZ.bytes(false, false), 'no gzip for a few bytes')
})

t.test('the index page is HTML that links to /metrics', async (t) => {
  const bytes = INDEX.bytes(false, false).toString()
  const [head = '', body = ''] = bytes.split('\r\n\r\n')
  t.match(head, /^HTTP\/1\.1 200 OK\r\nContent-Type: text\/html; charset=utf-8\r\nContent-Length: (\d+)\r\nConnection: close$/)
  t.equal(Number(/Content-Length: (\d+)/.exec(head)?.[1]), Buffer.byteLength(body))
  t.match(body, /<a href="\/metrics">/)
})

t.test('an unavailable reply is a 503 with the reason as its one-line body', async (t) => {
  const reason = 'metrics file /tmp/mätrics.prom is not available yet (ENOENT)'
  const reply = unavailableReply(reason)
  t.equal(reply.status, 503)
  t.equal(
    reply.bytes(false, false).toString(),
    'HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(reason) + 1}\r\nConnection: close\r\n\r\n${reason}\n`,
  )
  t.equal(reply.bytes(true, false).toString(), reply.bytes(false, false).toString().replace(`${reason}\n`, ''), 'HEAD')
})

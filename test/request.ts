import t from 'tap'
import { acceptsGzip, findHeadEnd, parseRequest, type ParsedRequest } from '../src/server/request.js'

/** Parses `text` as a complete head, the way the endpoint does once it found the blank line. */
function parse(text: string): ParsedRequest {
  const buf = Buffer.from(text, 'latin1')
  const end = findHeadEnd(buf, 0, buf.length)
  if (end === -1) throw new Error(`incomplete head ${JSON.stringify(text)}`)
  return parseRequest(buf, end)
}

function ok(route: string, headOnly = false, gzip = false) {
  return { ok: true, route, headOnly, gzip }
}

t.test('findHeadEnd finds the blank line that ends a head, with CRLF or bare LF', async (t) => {
  const cases: Array<[string, number]> = [
    ['GET / HTTP/1.1\r\n\r\n', 18],
    ['GET / HTTP/1.1\n\n', 16],
    ['GET / HTTP/1.1\r\n\n', 17],
    ['GET / HTTP/1.1\n\r\n', 17],
    ['GET / HTTP/1.1\r\nHost: a\r\n\r\nbody', 27],
    ['GET / HTTP/1.1\r\nHost: a\r\n', -1],
    ['GET / HTTP/1.1\r\n\r', -1],
    ['GET / HTTP/1.1', -1],
    ['', -1],
  ]
  for (const [text, end] of cases) {
    const buf = Buffer.from(text)
    t.equal(findHeadEnd(buf, 0, buf.length), end, JSON.stringify(text))
  }
})

t.test('findHeadEnd ignores bytes at and past the limit', async (t) => {
  const buf = Buffer.from('GET / HTTP/1.1\r\n\r\n')
  t.equal(findHeadEnd(buf, 0, 18), 18)
  t.equal(findHeadEnd(buf, 0, 17), -1, 'the final LF is past the limit')
  t.equal(findHeadEnd(buf, 0, 16), -1, 'CR LF both past the limit')
  t.equal(findHeadEnd(Buffer.from('GET / HTTP/1.1\n\n'), 0, 15), -1, 'second LF past the limit')
})

t.test('findHeadEnd finds a terminator split across appends when restarted 2 bytes back', async (t) => {
  const head = 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'
  for (const separator of ['\r\n\r\n', '\n\n', '\n\r\n']) {
    const text = head.replace('\r\n\r\n', separator)
    // Feed the head in two parts at every split point, as the endpoint does with its buffer.
    for (let split = 1; split < text.length; split++) {
      const first = Buffer.from(text.slice(0, split))
      const whole = Buffer.from(text)
      const early = findHeadEnd(first, 0, first.length)
      const end = early !== -1 ? early : findHeadEnd(whole, Math.max(0, split - 2), whole.length)
      t.equal(end, text.length, `${JSON.stringify(separator)} split at ${split}`)
    }
  }
})

t.test('routes for GET and HEAD', async (t) => {
  t.same(parse('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'), ok('metrics'))
  t.same(parse('HEAD /metrics HTTP/1.1\r\n\r\n'), ok('metrics', true))
  t.same(parse('GET / HTTP/1.1\r\n\r\n'), ok('index'))
  t.same(parse('GET /healthz HTTP/1.0\r\n\r\n'), ok('healthz'))
  t.same(parse('HEAD /healthz HTTP/1.1\r\n\r\n'), ok('healthz', true))
  t.same(parse('GET /metricsx HTTP/1.1\r\n\r\n'), ok('not-found'))
  t.same(parse('GET /metrics/ HTTP/1.1\r\n\r\n'), ok('not-found'))
  t.same(parse('GET /Metrics HTTP/1.1\r\n\r\n'), ok('not-found'), 'paths are case-sensitive')
  t.same(parse('GET /nope HTTP/1.1\r\n\r\n'), ok('not-found'))
  t.same(parse('GET /metrics HTTP/1.1\n\n'), ok('metrics'), 'bare LF line endings')
  t.same(parse('GET /metrics HTTP/1.9\r\n\r\n'), ok('metrics'), 'any HTTP/1.x minor version')
})

t.test('the query string is ignored', async (t) => {
  t.same(parse('GET /metrics?name[]=up&x=1 HTTP/1.1\r\n\r\n'), ok('metrics'))
  t.same(parse('GET /?x HTTP/1.1\r\n\r\n'), ok('index'))
  t.same(parse('GET /healthz? HTTP/1.1\r\n\r\n'), ok('healthz'))
})

t.test('absolute-form targets are served as their path', async (t) => {
  t.same(parse('GET http://127.0.0.1:9091/metrics HTTP/1.1\r\n\r\n'), ok('metrics'))
  t.same(parse('GET HTTPS://runner/metrics?x=1 HTTP/1.1\r\n\r\n'), ok('metrics'))
  t.same(parse('HEAD http://runner/healthz HTTP/1.1\r\n\r\n'), ok('healthz', true))
  t.same(parse('GET http://runner HTTP/1.1\r\n\r\n'), ok('index'), 'no path is the root')
  t.same(parse('GET http://runner?x HTTP/1.1\r\n\r\n'), ok('index'))
  t.same(parse('GET http://runner/ HTTP/1.1\r\n\r\n'), ok('index'))
  t.same(parse('GET http://runner/other HTTP/1.1\r\n\r\n'), ok('not-found'))
})

t.test('malformed request lines are 400', async (t) => {
  const bad = [
    'GET /metrics\r\n\r\n', // HTTP/0.9 style: no version
    'GET /metrics \r\n\r\n',
    'GET  /metrics HTTP/1.1\r\n\r\n',
    'GET /metrics  HTTP/1.1\r\n\r\n',
    'GET /metrics HTTP/1.1 \r\n\r\n',
    ' GET /metrics HTTP/1.1\r\n\r\n',
    'GET\r\n\r\n',
    '\r\n\r\n',
    '\n\n',
    'GET /metrics HTTP/2.0\r\n\r\n',
    'GET /metrics HTTP/1.11\r\n\r\n',
    'GET /metrics HTTP/1.x\r\n\r\n',
    'GET /metrics http/1.1\r\n\r\n',
    'GET /metrics HTTP/1\r\n\r\n',
    'GET /metrics HTTP/1.1\r\r\n\r\n',
    'GET /met\x00rics HTTP/1.1\r\n\r\n', // NUL in the path
    'GET /m\xe9trics HTTP/1.1\r\n\r\n', // a non-ASCII byte (invalid UTF-8 on its own)
    'GET /a\tb HTTP/1.1\r\n\r\n',
    'GET /a\x7f HTTP/1.1\r\n\r\n',
    'G(T /metrics HTTP/1.1\r\n\r\n', // '(' is not a token character
    'GET * HTTP/1.1\r\n\r\n', // asterisk-form
    'GET runner:9091 HTTP/1.1\r\n\r\n', // authority-form
    'GET metrics HTTP/1.1\r\n\r\n',
    'GET http:// HTTP/1.1\r\n\r\n',
    'GET http:///metrics HTTP/1.1\r\n\r\n', // empty authority
    'GET ftp://runner/metrics HTTP/1.1\r\n\r\n',
    'GET http:/metrics HTTP/1.1\r\n\r\n',
  ]
  for (const text of bad) t.same(parse(text), { ok: false, status: 400 }, JSON.stringify(text))
})

t.test('methods other than GET and HEAD are 405', async (t) => {
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'get', 'HEADER', 'GE', 'BREW']) {
    t.same(parse(`${method} /metrics HTTP/1.1\r\n\r\n`), { ok: false, status: 405 }, method)
  }
  t.same(parse('CONNECT runner:443 HTTP/1.1\r\n\r\n'), { ok: false, status: 405 }, 'CONNECT authority-form')
  t.same(parse('OPTIONS * HTTP/1.1\r\n\r\n'), { ok: false, status: 405 }, 'OPTIONS asterisk-form')
})

t.test('Accept-Encoding in the head decides gzip', async (t) => {
  t.same(parse('GET /metrics HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n'), ok('metrics', false, true))
  t.same(parse('HEAD /metrics HTTP/1.1\r\naccept-encoding:gzip\r\n\r\n'), ok('metrics', true, true))
  t.same(parse('GET /metrics HTTP/1.1\nACCEPT-ENCODING: GZIP\n\n'), ok('metrics', false, true))
  t.same(parse('GET /metrics HTTP/1.1\r\nAccept-Encoding: br\r\n\r\n'), ok('metrics'))
  t.same(parse('GET /metrics HTTP/1.1\r\nAccept-Encoding: gzip;q=0\r\n\r\n'), ok('metrics'))
  t.same(
    parse('GET /metrics HTTP/1.1\r\nAccept-Encoding: br\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n'),
    ok('metrics', false, true),
    'two Accept-Encoding lines are one list',
  )
  t.same(parse('GET /metrics HTTP/1.1\r\nX-Accept-Encoding: gzip\r\n\r\n'), ok('metrics'), 'another header')
  t.same(parse('GET /metrics HTTP/1.1\r\nAccept-Encodin: gzip\r\n\r\n'), ok('metrics'), 'a shorter name')
  t.same(parse('GET /metrics HTTP/1.1\r\nAccept-Encoding : gzip\r\n\r\n'), ok('metrics'), 'space before colon')
  t.same(parse('GET /metrics HTTP/1.1\r\nAccept-Encoding\r\n\r\n'), ok('metrics'), 'no colon')
  t.same(parse('GET /metrics HTTP/1.1\r\n\r\nAccept-Encoding: gzip\r\n\r\n'), ok('metrics'), 'body is not head')
  t.same(parse('GET /nope HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n'), ok('not-found', false, true))
})

t.test('acceptsGzip reads codings and q-values', async (t) => {
  const cases: Array<[string | undefined, boolean]> = [
    [undefined, false],
    ['', false],
    ['gzip', true],
    [' gzip , deflate', true],
    ['GZip', true],
    ['x-gzip', true],
    ['deflate, br', false],
    ['identity', false],
    ['*', true],
    ['*;q=0', false],
    ['gzip;q=0', false],
    ['gzip; q=0.000', false],
    ['gzip;Q=0', false],
    ['gzip;q=0.001', true],
    ['gzip;q=1', true],
    ['gzip;q=1.0;level=3', true],
    ['gzip;level=3', true],
    ['gzip;q=', false],
    ['gzip;q=abc', false],
    ['gzip;q=0, *', false],
    ['*;q=0, gzip', true],
    ['gzip;q=0, gzip;q=0.5', true],
    ['br, *;q=0.1', true],
    ['gzipper', false],
  ]
  for (const [value, expected] of cases) t.equal(acceptsGzip(value), expected, JSON.stringify(value))
})

t.test('fuzz: random and mutated heads never throw and always get a route, a 400 or a 405', async (t) => {
  // A fixed-seed generator (mulberry32), so a failure can be replayed.
  let seed = 0x5eed
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!
  const valid = [
    'GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip;q=0.5, *;q=0\r\n\r\n',
    'HEAD http://runner:9091/healthz?x=1 HTTP/1.0\n\n',
    'POST * HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n',
  ]
  const interesting = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x2f, 0x3a, 0x3b, 0x3d, 0x3f, 0x7f, 0x80, 0xff]
  const outcomes = new Set<string>()
  for (let round = 0; round < 3000; round++) {
    let bytes: number[]
    if (round % 3 === 0) {
      bytes = Array.from({ length: Math.floor(random() * 200) }, () =>
        random() < 0.5 ? pick(interesting) : Math.floor(random() * 256),
      )
    } else {
      bytes = [...Buffer.from(pick(valid), 'latin1')]
      for (let edits = 1 + Math.floor(random() * 4); edits > 0; edits--) {
        const at = Math.floor(random() * (bytes.length + 1))
        const byte = random() < 0.7 ? pick(interesting) : Math.floor(random() * 256)
        const kind = random()
        if (kind < 0.33) bytes.splice(at, 1)
        else if (kind < 0.66) bytes.splice(at, 0, byte)
        else bytes[at] = byte
      }
    }
    const buf = Buffer.from(bytes)
    const end = findHeadEnd(buf, 0, buf.length)
    if (end === -1) continue
    const parsed = parseRequest(buf, end)
    const outcome = parsed.ok ? parsed.route : String(parsed.status)
    if (!['metrics', 'index', 'healthz', 'not-found', '400', '405'].includes(outcome)) {
      t.fail(`unexpected ${outcome} for ${JSON.stringify(buf.toString('latin1'))}`)
    }
    outcomes.add(outcome)
  }
  t.ok(outcomes.has('400') && outcomes.has('405') && outcomes.has('metrics'), [...outcomes].join(', '))
})

// Request-head parsing: pure functions over the bytes a client sent. Only the request line and
// Accept-Encoding matter to us; every other header is skipped unread. Parsing works on the bytes
// directly, so answering a scrape builds no strings beyond an Accept-Encoding value.

export type Route = 'metrics' | 'index' | 'healthz' | 'not-found'

export type ParsedRequest =
  | { readonly ok: true; readonly route: Route; readonly headOnly: boolean; readonly gzip: boolean }
  | RequestError

/** What the request line alone says; the headers only add `gzip`. */
export type RequestLine = { readonly ok: true; readonly route: Route; readonly headOnly: boolean } | RequestError

export type RequestError = { readonly ok: false; readonly status: 400 | 405 }

const LF = 0x0a
const CR = 0x0d
const SP = 0x20
const SLASH = 0x2f
const QUESTION = 0x3f

const BAD_REQUEST: RequestError = { ok: false, status: 400 }
const METHOD_NOT_ALLOWED: RequestError = { ok: false, status: 405 }

const GET = Buffer.from('GET')
const HEAD = Buffer.from('HEAD')
const HTTP_1 = Buffer.from('HTTP/1.')
const HTTP_SCHEME = Buffer.from('http://')
const HTTPS_SCHEME = Buffer.from('https://')
const ACCEPT_ENCODING = Buffer.from('accept-encoding:')
const PATHS: ReadonlyArray<readonly [Buffer, Route]> = [
  [Buffer.from('/metrics'), 'metrics'],
  [Buffer.from('/'), 'index'],
  [Buffer.from('/healthz'), 'healthz'],
]

// tchar from RFC 9110 section 5.6.2: the bytes a method may be made of.
const TCHAR = new Uint8Array(256)
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") {
  TCHAR[c.charCodeAt(0)] = 1
}

/**
 * The offset just past the blank line that ends a request head (`\r\n\r\n`, or a bare `\n`
 * anywhere a `\r\n` belongs), looking only at `buf[0, limit)` and for a terminator that ends
 * after `from`; -1 when the head is not complete yet. Callers that append to a buffer pass
 * `from` = the old length minus 2, since a terminator is at most 3 bytes long.
 */
export function findHeadEnd(buf: Buffer, from: number, limit: number): number {
  let lf = buf.indexOf(LF, from)
  while (lf !== -1 && lf < limit) {
    const next = lf + 1
    if (next < limit && buf[next] === LF) return next + 1
    if (next + 1 < limit && buf[next] === CR && buf[next + 1] === LF) return next + 2
    lf = buf.indexOf(LF, next)
  }
  return -1
}

/**
 * Parses the complete head `buf[0, end)` (as found by `findHeadEnd`): `METHOD SP target SP
 * HTTP/1.x`. A malformed request line, a missing version (HTTP/0.9 style) or a target that is
 * neither origin-form (`/path`) nor absolute-form (`http://host/path`) is a 400; a well-formed
 * request with a method other than GET or HEAD is a 405. The query string is ignored.
 */
export function parseRequest(buf: Buffer, end: number): ParsedRequest {
  const lf = buf.indexOf(LF)
  const line = parseLine(buf, lf)
  if (!line.ok) return line
  return { ok: true, route: line.route, headOnly: line.headOnly, gzip: acceptsGzip(acceptEncodingOf(buf, lf + 1, end)) }
}

/**
 * The verdict of the request line alone, once its LF is in `buf[from, limit)`; `undefined`
 * while it is still arriving. The caller passes in `from` how many bytes it already searched
 * without finding the LF, so a head that arrives a byte at a time is not searched over and
 * over. A 400 or a 405 needs no header, so the endpoint answers them at once: an HTTP/0.9
 * client sends `GET /metrics` and one line end, then waits for an answer, not for a deadline.
 */
export function parseRequestLine(buf: Buffer, from: number, limit: number): RequestLine | undefined {
  const lf = buf.indexOf(LF, from)
  if (lf === -1 || lf >= limit) return undefined
  return parseLine(buf, lf)
}

/** The request line ending at the LF at `lf`: what `parseRequest` says, without the headers. */
function parseLine(buf: Buffer, lf: number): RequestLine {
  let lineEnd = lf
  if (buf[lineEnd - 1] === CR) lineEnd--

  let i = 0
  while (i < lineEnd && TCHAR[buf[i]!] === 1) i++
  const methodEnd = i
  if (methodEnd === 0 || buf[i] !== SP) return BAD_REQUEST
  const targetStart = ++i
  while (i < lineEnd && buf[i]! > SP && buf[i]! < 0x7f) i++
  const targetEnd = i
  if (targetEnd === targetStart || buf[i] !== SP) return BAD_REQUEST
  i++
  if (lineEnd - i !== HTTP_1.length + 1 || !bytesEqual(buf, i, HTTP_1) || !isDigit(buf[lineEnd - 1]!)) {
    return BAD_REQUEST
  }

  const headOnly = methodEnd === HEAD.length && bytesEqual(buf, 0, HEAD)
  if (!headOnly && !(methodEnd === GET.length && bytesEqual(buf, 0, GET))) return METHOD_NOT_ALLOWED

  const route = routeOf(buf, targetStart, targetEnd)
  if (route === undefined) return BAD_REQUEST
  return { ok: true, route, headOnly }
}

/**
 * Whether an Accept-Encoding value lets us answer with gzip: an explicit `gzip` (or `x-gzip`)
 * decides by its q-value; otherwise `*` does. q=0 means "not acceptable" (RFC 9110 section
 * 12.5.3), and so does a q-value we cannot read: the identity encoding is always a safe answer.
 */
export function acceptsGzip(value: string | undefined): boolean {
  if (value === undefined) return false
  let gzip: number | undefined
  let any: number | undefined
  for (const element of value.split(',')) {
    const [coding = '', ...params] = element.split(';')
    const name = coding.trim().toLowerCase()
    if (name !== 'gzip' && name !== 'x-gzip' && name !== '*') continue
    let q = 1
    for (const param of params) {
      const [key = '', raw = ''] = param.split('=')
      // Number() trims, reads '' as 0 and anything unreadable as NaN: both end up 0.
      if (key.trim().toLowerCase() === 'q') q = Number(raw) || 0
    }
    if (name === '*') any = q
    else gzip = Math.max(gzip ?? 0, q)
  }
  return (gzip ?? any ?? 0) > 0
}

/**
 * The route an origin-form (`/path?query`) or http(s) absolute-form (`http://host/path?query`)
 * target names; `undefined` for any other form (`*`, `host:443`, a relative path).
 */
function routeOf(buf: Buffer, start: number, end: number): Route | undefined {
  let pathStart = start
  if (buf[start] !== SLASH) {
    const scheme = startsWithIgnoringCase(buf, start, HTTP_SCHEME)
      ? HTTP_SCHEME.length
      : startsWithIgnoringCase(buf, start, HTTPS_SCHEME)
        ? HTTPS_SCHEME.length
        : 0
    if (scheme === 0) return undefined
    const authorityStart = start + scheme
    pathStart = authorityStart
    while (pathStart < end && buf[pathStart] !== SLASH && buf[pathStart] !== QUESTION) pathStart++
    if (pathStart === authorityStart) return undefined
    // `http://host` and `http://host?query` name the root (RFC 9110 section 4.2.3).
    if (pathStart === end || buf[pathStart] === QUESTION) return 'index'
  }
  let pathEnd = pathStart
  while (pathEnd < end && buf[pathEnd] !== QUESTION) pathEnd++
  for (const [path, route] of PATHS) {
    if (pathEnd - pathStart === path.length && bytesEqual(buf, pathStart, path)) return route
  }
  return 'not-found'
}

/** The Accept-Encoding value(s) among the header lines in `buf[start, end)`, comma-joined. */
function acceptEncodingOf(buf: Buffer, start: number, end: number): string | undefined {
  let value: string | undefined
  let lineStart = start
  while (lineStart < end) {
    let lineEnd = buf.indexOf(LF, lineStart)
    const next = lineEnd + 1
    if (buf[lineEnd - 1] === CR) lineEnd--
    if (lineEnd - lineStart >= ACCEPT_ENCODING.length && startsWithIgnoringCase(buf, lineStart, ACCEPT_ENCODING)) {
      const text = buf.toString('latin1', lineStart + ACCEPT_ENCODING.length, lineEnd)
      value = value === undefined ? text : `${value},${text}`
    }
    lineStart = next
  }
  return value
}

function bytesEqual(buf: Buffer, at: number, expected: Buffer): boolean {
  return buf.compare(expected, 0, expected.length, at, at + expected.length) === 0
}

/** `expected` must be lower case; letters in `buf` compare case-insensitively, other bytes exactly. */
function startsWithIgnoringCase(buf: Buffer, at: number, expected: Buffer): boolean {
  for (let k = 0; k < expected.length; k++) {
    // Past the end of `buf` this reads undefined, which matches nothing.
    let c = buf[at + k]!
    if (c >= 0x41 && c <= 0x5a) c |= 0x20
    if (c !== expected[k]) return false
  }
  return true
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

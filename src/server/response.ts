// The bytes of every response, built once and sent with one write. Each response is header and
// body in a single Buffer; the header alone (for HEAD) is a view into it, not a copy.
import { gzipSync } from 'node:zlib'

export interface Reply {
  readonly status: number
  /** The bytes to send: the whole response, or only its header for a HEAD request. */
  bytes(headOnly: boolean, gzip: boolean): Buffer
}

interface Encoded {
  readonly full: Buffer
  readonly head: Buffer
}

const REASONS: Readonly<Record<number, string>> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable',
}

const METRICS_TYPE = 'Content-Type: text/plain; version=0.0.4; charset=utf-8'
const TEXT_TYPE = 'Content-Type: text/plain; charset=utf-8'
const HTML_TYPE = 'Content-Type: text/html; charset=utf-8'

function encode(status: number, headers: readonly string[], body: Buffer): Encoded {
  const lines = [`HTTP/1.1 ${status} ${REASONS[status]}`, ...headers, `Content-Length: ${body.length}`, 'Connection: close']
  const header = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
  const full = Buffer.concat([header, body])
  return { full, head: full.subarray(0, header.length) }
}

/** A response whose bytes never change; gzip is not worth it for a few bytes. */
class FixedReply implements Reply {
  readonly status: number
  readonly #encoded: Encoded

  constructor(status: number, headers: readonly string[], body: string) {
    this.status = status
    this.#encoded = encode(status, headers, Buffer.from(body, 'utf8'))
  }

  bytes(headOnly: boolean): Buffer {
    return headOnly ? this.#encoded.head : this.#encoded.full
  }
}

/**
 * The 200 response for one version of the metrics file. The gzip variant is built on first
 * use and kept, so each version is compressed at most once however often it is scraped.
 */
export class MetricsReply implements Reply {
  readonly status = 200
  readonly #plain: Encoded
  #gzip: Encoded | undefined

  constructor(body: Buffer) {
    this.#plain = encode(200, [METRICS_TYPE], body)
  }

  bytes(headOnly: boolean, gzip: boolean): Buffer {
    const encoded = gzip ? (this.#gzip ??= this.#compress()) : this.#plain
    return headOnly ? encoded.head : encoded.full
  }

  #compress(): Encoded {
    const body = this.#plain.full.subarray(this.#plain.head.length)
    return encode(200, [METRICS_TYPE, 'Content-Encoding: gzip', 'Vary: Accept-Encoding'], gzipSync(body))
  }
}

/** A 503 that says in one line why the metrics cannot be served. */
export function unavailableReply(reason: string): Reply {
  return new FixedReply(503, [TEXT_TYPE], `${reason}\n`)
}

const INDEX_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>runner-metrics</title></head>
<body><h1>runner-metrics</h1><p>Prometheus metrics of this GitHub Actions runner: <a href="/metrics">/metrics</a></p></body></html>
`

export const INDEX: Reply = new FixedReply(200, [HTML_TYPE], INDEX_PAGE)
export const HEALTHZ: Reply = new FixedReply(200, [TEXT_TYPE], 'ok\n')
export const NOT_FOUND: Reply = new FixedReply(404, [TEXT_TYPE], 'not found: try /metrics\n')
export const BAD_REQUEST: Reply = new FixedReply(400, [TEXT_TYPE], 'bad request\n')
export const METHOD_NOT_ALLOWED: Reply = new FixedReply(405, [TEXT_TYPE, 'Allow: GET, HEAD'], 'method not allowed\n')
export const HEADERS_TOO_LARGE: Reply = new FixedReply(431, [TEXT_TYPE], 'request header fields too large\n')

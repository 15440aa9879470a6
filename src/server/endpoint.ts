// The HTTP endpoint on node:net: one request per connection, one write per response, then
// close. Every connection has a deadline for its head and another for lingering after the
// answer, the number of connections is capped, and no client can make the server throw.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { errnoCode } from '../errors.js'
import { createOnceLog, type Log } from '../log.js'
import { findHeadEnd, parseRequest, type Route } from './request.js'
import { BAD_REQUEST, HEADERS_TOO_LARGE, HEALTHZ, INDEX, METHOD_NOT_ALLOWED, NOT_FOUND, type Reply } from './response.js'
import { createSnapshot } from './snapshot.js'

export interface EndpointOptions {
  metricsFile: string
  /** Connections open at once; one more is destroyed as soon as it is accepted. */
  maxConnections: number
  /** The whole request head must arrive within this long after connecting, else the socket is destroyed. */
  headTimeoutMs: number
  /** A longer request head gets a 431. */
  maxHeadBytes: number
  /** A socket still open this long after its response was queued is destroyed (clients that never read). */
  lingerMs: number
  /** A larger metrics file gets a 503. */
  maxFileBytes: number
  /** Errors only, never per request; a repeated problem is logged once. */
  log: Log
}

export interface EndpointStats {
  responses: number
  byStatus: Record<number, number>
  open: number
  rejected: number
}

export interface Endpoint {
  readonly server: Server
  /** Resolves with the bound address; rejects with the listen error as is (EADDRINUSE, EACCES, ...). */
  listen(port: number, host?: string): Promise<AddressInfo>
  /**
   * Stops accepting, destroys sockets still waiting for their head, lets queued responses finish
   * for up to `graceMs`, then destroys the rest. Resolves once every socket is closed.
   */
  close(graceMs?: number): Promise<void>
  stats(): EndpointStats
}

const ERROR_REPLIES: Readonly<Record<400 | 405, Reply>> = { 400: BAD_REQUEST, 405: METHOD_NOT_ALLOWED }
const ACCEPT_LOG_KIND = 'accept'

interface Connection {
  /** performance.now() after which the socket is destroyed: its head deadline, then its linger deadline. */
  deadline: number
  answered: boolean
}

function ignore(): void {}

export function createEndpoint(options: EndpointOptions): Endpoint {
  const { maxConnections, headTimeoutMs, maxHeadBytes, lingerMs } = options
  const once = createOnceLog(options.log)
  const snapshot = createSnapshot({ path: options.metricsFile, maxFileBytes: options.maxFileBytes, log: options.log })
  const open = new Map<Socket, Connection>()
  const byStatus: Record<number, number> = {}
  let responses = 0
  let rejected = 0
  let acceptFailing = false
  let closed: Promise<void> | undefined
  // Set by close(): called when the last open socket has closed.
  let onLastClose: (() => void) | undefined

  // Deadlines are enforced by one sweep over the open sockets rather than a timer per socket
  // (two timers per connection cost a quarter of the throughput; node:http checks its
  // headersTimeout the same way). A deadline is late by at most one sweep period.
  const sweepEveryMs = Math.min(250, Math.max(10, Math.min(headTimeoutMs, lingerMs) / 10))
  let sweeper: NodeJS.Timeout | undefined

  function sweep(): void {
    if (open.size === 0) {
      clearInterval(sweeper)
      sweeper = undefined
      return
    }
    const now = performance.now()
    for (const [socket, connection] of open) if (connection.deadline <= now) socket.destroy()
  }

  // allowHalfOpen: a client may shut down its side right after the request and still read the answer.
  const server = createServer({ allowHalfOpen: true, noDelay: true }, accept)

  function accept(socket: Socket): void {
    socket.on('error', ignore)
    if (acceptFailing) {
      acceptFailing = false
      once.clear(ACCEPT_LOG_KIND)
    }
    if (open.size >= maxConnections) {
      rejected++
      socket.destroy()
      return
    }
    // A deadline from connect, not an idle timeout, so a byte a second cannot keep it open.
    const connection: Connection = { deadline: performance.now() + headTimeoutMs, answered: false }
    open.set(socket, connection)
    sweeper ??= setInterval(sweep, sweepEveryMs).unref()
    handle(socket, connection)
  }

  function replyFor(route: Route): Reply {
    switch (route) {
      case 'metrics':
        return snapshot.current()
      case 'index':
        return INDEX
      case 'healthz':
        return HEALTHZ
      case 'not-found':
        return NOT_FOUND
    }
  }

  function handle(socket: Socket, connection: Connection): void {
    // The head so far when it arrives in several chunks; most heads come in one and need no copy.
    let pending: Buffer | undefined
    let filled = 0

    function answer(reply: Reply, headOnly: boolean, gzip: boolean): void {
      connection.answered = true
      connection.deadline = performance.now() + lingerMs
      pending = undefined
      responses++
      byStatus[reply.status] = (byStatus[reply.status] ?? 0) + 1
      socket.end(reply.bytes(headOnly, gzip))
    }

    // Reading goes on after the answer, and what arrives is dropped: closing a socket with unread
    // data makes the kernel send a reset, which scrapers report as "connection reset by peer".
    socket.on('data', (chunk: Buffer) => {
      if (connection.answered) return
      let head = chunk
      let from = 0
      if (filled > 0) {
        from = Math.max(0, filled - 2)
        filled += chunk.copy(pending!, filled)
        head = pending!
      }
      const length = filled > 0 ? filled : chunk.length
      const end = findHeadEnd(head, from, Math.min(length, maxHeadBytes))
      if (end !== -1) {
        const request = parseRequest(head, end)
        if (request.ok) answer(replyFor(request.route), request.headOnly, request.gzip)
        else answer(ERROR_REPLIES[request.status], false, false)
      } else if (length >= maxHeadBytes) {
        answer(HEADERS_TOO_LARGE, false, false)
      } else if (filled === 0) {
        pending = Buffer.allocUnsafe(maxHeadBytes)
        filled = chunk.copy(pending)
      }
    })

    socket.on('end', () => {
      if (connection.answered) return
      // A client that connects and leaves without a byte (a TCP health probe) asked nothing.
      if (filled === 0) socket.end()
      else answer(BAD_REQUEST, false, false)
    })

    socket.on('close', () => {
      open.delete(socket)
      if (open.size === 0) onLastClose?.()
    })
  }

  // After listening, the only errors are failed accepts (EMFILE, ENFILE): libuv drops that
  // connection and the server keeps listening, so say it once and go on serving.
  function onServerError(error: Error): void {
    acceptFailing = true
    once.once(
      ACCEPT_LOG_KIND,
      `cannot accept a connection (${errnoCode(error)}): ${error.message}; ` +
        'raise the open file limit (ulimit -n) or lower --max-connections',
    )
  }

  function listen(port: number, host?: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      // Both handlers go when either fires, so a failed listen() leaves nothing behind for a retry.
      const onListening = (): void => {
        server.removeListener('error', onError)
        server.on('error', onServerError)
        resolve(server.address() as AddressInfo)
      }
      const onError = (error: Error): void => {
        server.removeListener('listening', onListening)
        reject(error)
      }
      server.once('listening', onListening)
      server.once('error', onError)
      server.listen({ port, host })
    })
  }

  function close(graceMs = 500): Promise<void> {
    closed ??= new Promise((resolve) => {
      const grace = setTimeout(() => {
        for (const socket of open.keys()) socket.destroy()
      }, graceMs)
      // Done when the server has closed and our last socket has run its 'close' handler.
      let waitingFor = 2
      const settle = (): void => {
        if (--waitingFor > 0) return
        clearTimeout(grace)
        clearInterval(sweeper)
        snapshot.close()
        resolve()
      }
      // The callback runs once the server stops, listening or not (it then gets an error we ignore).
      server.close(() => settle())
      if (open.size === 0) settle()
      else onLastClose = settle
      for (const [socket, connection] of open) if (!connection.answered) socket.destroy()
    })
    return closed
  }

  function stats(): EndpointStats {
    return { responses, byStatus: { ...byStatus }, open: open.size, rejected }
  }

  return { server, listen, close, stats }
}

// The HTTP endpoint on node:net: one request per connection, one write per response, then
// close. Every connection has a deadline for its head and another for lingering after the
// answer, the number of connections is capped (the oldest making room for a newcomer once it
// has had its chance), and no client can make the server throw.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { errnoCode } from '../errors.js'
import { createOnceLog, type Log } from '../log.js'
import { descriptorShortage } from './descriptors.js'
import { findHeadEnd, parseRequest, parseRequestLine, type Route } from './request.js'
import { BAD_REQUEST, HEADERS_TOO_LARGE, HEALTHZ, INDEX, METHOD_NOT_ALLOWED, NOT_FOUND, type Reply } from './response.js'
import { createSnapshot } from './snapshot.js'

export interface EndpointOptions {
  metricsFile: string
  /**
   * Connections open at once. At the cap, a new connection is destroyed as soon as it is
   * accepted, unless the oldest open one has been open `evictAfterMs`: that one is destroyed
   * instead, so connections that hold the cap without a request cannot lock scrapes out.
   */
  maxConnections: number
  /** How long a connection is safe from eviction at the cap (default 500 ms). */
  evictAfterMs?: number
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
  /** How often to check that a file descriptor is free for the next accept (default 1000 ms). */
  descriptorCheckMs?: number
}

export interface EndpointStats {
  responses: number
  byStatus: Record<number, number>
  open: number
  /** Connections the cap closed: refused on arrival, or evicted to make room. */
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

/**
 * Connections the kernel queues until we accept them; it caps this at net.core.somaxconn (4096
 * by default since Linux 5.4). Node's default, 511, is smaller than a burst the cap is made for:
 * the kernel drops the SYNs that do not fit, and a client (a scrape among them) retries only a
 * second later. Accepting takes about 0.1 ms a connection, so a full queue drains in well under
 * a second.
 */
const LISTEN_BACKLOG = 4096
/**
 * Long enough for any scrape that is not held back on purpose: a connection is evicted only at
 * the cap, and a scraper sends its request as soon as it is connected.
 */
const DEFAULT_EVICT_AFTER_MS = 500
const DEFAULT_DESCRIPTOR_CHECK_MS = 1000
const ERROR_REPLIES: Readonly<Record<400 | 405, Reply>> = { 400: BAD_REQUEST, 405: METHOD_NOT_ALLOWED }
const ACCEPT_LOG_KIND = 'accept'
/**
 * Out of descriptors, each check that finds one free may only be a moment between a closed
 * connection and the next: the trouble is over, and worth a new log line when it comes back,
 * after this many checks in a row found one.
 */
const FREE_CHECKS_TO_RECOVER = 5

interface Connection {
  /** performance.now() when accepted. */
  readonly openedAt: number
  /** performance.now() after which the socket is destroyed: its head deadline, then its linger deadline. */
  deadline: number
  answered: boolean
}

function ignore(): void {}

export function createEndpoint(options: EndpointOptions): Endpoint {
  const { maxConnections, headTimeoutMs, maxHeadBytes, lingerMs } = options
  const evictAfterMs = options.evictAfterMs ?? DEFAULT_EVICT_AFTER_MS
  const once = createOnceLog(options.log)
  const snapshot = createSnapshot({ path: options.metricsFile, maxFileBytes: options.maxFileBytes, log: options.log })
  const open = new Map<Socket, Connection>()
  const byStatus: Record<number, number> = {}
  let responses = 0
  let rejected = 0
  // Why connections cannot be accepted: a failed accept Node told us about, or no free descriptor.
  let acceptTrouble: 'error' | 'descriptors' | undefined
  let freeChecks = 0
  let descriptorChecker: NodeJS.Timeout | undefined
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
    if (acceptTrouble === 'error') {
      acceptTrouble = undefined
      once.clear(ACCEPT_LOG_KIND)
    }
    const now = performance.now()
    if (open.size >= maxConnections && !evictOldest(now)) {
      rejected++
      socket.destroy()
      return
    }
    // A deadline from connect, not an idle timeout, so a byte a second cannot keep it open.
    const connection: Connection = { openedAt: now, deadline: now + headTimeoutMs, answered: false }
    open.set(socket, connection)
    sweeper ??= setInterval(sweep, sweepEveryMs).unref()
    handle(socket, connection)
  }

  /**
   * Destroys the oldest connection if it has been open `evictAfterMs`. The map keeps insertion
   * order, so the oldest is its first entry. Refusing every newcomer instead would let a client
   * that opens the cap's worth of idle connections keep scrapes out until the head deadline,
   * and again each time it reconnects.
   */
  function evictOldest(now: number): boolean {
    const [socket, connection] = open.entries().next().value!
    if (now - connection.openedAt < evictAfterMs) return false
    // Forgotten now, not at its 'close', which comes on a later tick: the room is needed now.
    open.delete(socket)
    socket.destroy()
    rejected++
    return true
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
    // The request line has arrived and is good: only the end of the head is missing.
    let lineIsGood = false

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
      // What came before this chunk was searched already: look for line ends only in what is new.
      const searched = filled
      let head = chunk
      if (searched > 0) {
        filled += chunk.copy(pending!, filled)
        head = pending!
      }
      const length = searched > 0 ? filled : chunk.length
      const limit = Math.min(length, maxHeadBytes)
      const end = findHeadEnd(head, Math.max(0, searched - 2), limit)
      if (end !== -1) {
        const request = parseRequest(head, end)
        if (request.ok) answer(replyFor(request.route), request.headOnly, request.gzip)
        else answer(ERROR_REPLIES[request.status], false, false)
        return
      }
      if (!lineIsGood) {
        const line = parseRequestLine(head, searched, limit)
        if (line?.ok === false) {
          answer(ERROR_REPLIES[line.status], false, false)
          return
        }
        lineIsGood = line !== undefined
      }
      if (length >= maxHeadBytes) answer(HEADERS_TOO_LARGE, false, false)
      else if (searched === 0) {
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
      // An evicted socket was forgotten when it was evicted.
      if (!open.delete(socket)) return
      if (open.size === 0) onLastClose?.()
    })
  }

  // After listening, the only errors are failed accepts (EMFILE, ENFILE) that libuv could not
  // hide (its spare descriptor gone): it drops that connection and the server keeps listening,
  // so say it once and go on serving.
  function onServerError(error: Error): void {
    acceptTrouble ??= 'error'
    once.once(
      ACCEPT_LOG_KIND,
      `cannot accept a connection (${errnoCode(error)}): ${error.message}; ` +
        'raise the open file limit (ulimit -n) or lower --max-connections',
    )
  }

  function checkDescriptors(): void {
    const shortage = descriptorShortage()
    if (shortage !== undefined) {
      acceptTrouble = 'descriptors'
      freeChecks = 0
      once.once(
        ACCEPT_LOG_KIND,
        `cannot accept a connection (${shortage}): no file descriptor is free, so new connections are closed unanswered; ` +
          'raise the open file limit (ulimit -n) or lower --max-connections',
      )
    } else if (acceptTrouble === 'descriptors' && ++freeChecks >= FREE_CHECKS_TO_RECOVER) {
      acceptTrouble = undefined
      once.clear(ACCEPT_LOG_KIND)
    }
  }

  function listen(port: number, host?: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      // Both handlers go when either fires, so a failed listen() leaves nothing behind for a retry.
      const onListening = (): void => {
        server.removeListener('error', onError)
        server.on('error', onServerError)
        descriptorChecker = setInterval(checkDescriptors, options.descriptorCheckMs ?? DEFAULT_DESCRIPTOR_CHECK_MS).unref()
        resolve(server.address() as AddressInfo)
      }
      const onError = (error: Error): void => {
        server.removeListener('listening', onListening)
        reject(error)
      }
      server.once('listening', onListening)
      server.once('error', onError)
      server.listen({ port, host, backlog: LISTEN_BACKLOG })
    })
  }

  function close(graceMs = 500): Promise<void> {
    clearInterval(descriptorChecker)
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

// Deadlines, caps and clients that misbehave: the endpoint bounds each of them and keeps serving.
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import {
  connectTo,
  exchange,
  get,
  parseResponse,
  request,
  startEndpoint,
  type TestEndpointOptions,
} from './fixtures/http-client.js'

const BODY = 'a_metric 1\n'

async function setup(t: Test, options: Partial<TestEndpointOptions> = {}, body = BODY) {
  const dir = t.testdir()
  writeFileSync(join(dir, 'metrics.prom'), body)
  return startEndpoint(t, { metricsFile: join(dir, 'metrics.prom'), ...options })
}

interface Accepted {
  socket: Socket
  /** Resolves after the endpoint's own 'close' handler ran (ours is added after it). */
  closed: Promise<unknown>
}

/** The server side of the next connection the endpoint accepts. */
async function nextAccepted(server: Server): Promise<Accepted> {
  const [socket] = (await once(server, 'connection')) as [Socket]
  return { socket, closed: once(socket, 'close') }
}

t.test('a client that sends nothing is closed at the head deadline', { timeout: 5000 }, async (t) => {
  const { port, endpoint } = await setup(t, { headTimeoutMs: 200 })
  const started = Date.now()
  const accepted = nextAccepted(endpoint.server)
  const result = await exchange(await connectTo(port))
  const elapsed = Date.now() - started
  t.ok(elapsed >= 190 && elapsed < 1500, `closed after ${elapsed} ms`)
  t.equal(result.data.length, 0, 'no response')
  await (await accepted).closed
  t.same(endpoint.stats(), { responses: 0, byStatus: {}, open: 0, rejected: 0 })
})

t.test('a client sending a byte every 50 ms is cut at the deadline, not kept alive', { timeout: 5000 }, async (t) => {
  const { port } = await setup(t, { headTimeoutMs: 300 })
  const client = await connectTo(port)
  const started = Date.now()
  const done = exchange(client)
  const head = `GET /metrics HTTP/1.1\r\nX-Pad: ${'a'.repeat(1000)}`
  let sent = 0
  const drip = setInterval(() => client.write(head[sent++ % head.length]!), 50)
  const result = await done
  clearInterval(drip)
  const elapsed = Date.now() - started
  t.ok(elapsed >= 290 && elapsed < 1500, `cut after ${elapsed} ms and ${sent} bytes`)
  t.ok(sent >= 4, 'bytes kept coming before the cut')
  t.equal(result.data.length, 0)
})

t.test('300 concurrent connections are all answered', { timeout: 10000 }, async (t) => {
  const { port, endpoint } = await setup(t)
  const replies = await Promise.all(Array.from({ length: 300 }, () => get(port)))
  const bodies = replies.map((reply) => parseResponse(reply.data).body.toString())
  t.equal(bodies.filter((body) => body === BODY).length, 300)
  t.equal(endpoint.stats().byStatus[200], 300)
})

t.test('300 idle connections do not delay a scrape', { timeout: 10000 }, async (t) => {
  const { port } = await setup(t)
  const idle = await Promise.all(Array.from({ length: 300 }, () => connectTo(port)))
  t.teardown(() => idle.forEach((socket) => socket.destroy()))
  const started = Date.now()
  t.equal(parseResponse((await get(port)).data).body.toString(), BODY)
  // Generous for a loaded CI machine: a server that queued behind idle clients would never answer.
  const elapsed = Date.now() - started
  t.ok(elapsed < 1000, `answered in ${elapsed} ms`)
})

t.test('no reset when the request body is never read by the handler: a clean FIN', { timeout: 8000 }, async (t) => {
  // lingerMs below the test timeout: if the endpoint stopped reading after answering, the
  // linger timer would close a socket with unread data and the client would see ECONNRESET.
  const { port } = await setup(t, { lingerMs: 1000 })
  const bodySize = 4 * 1024 * 1024
  const head = `POST /metrics HTTP/1.1\r\nContent-Length: ${bodySize}\r\n\r\n`
  const result = await request(port, [head, Buffer.alloc(bodySize, 'x')])
  t.equal(result.error, undefined, 'no ECONNRESET')
  t.equal(result.ended, true, 'the server ended with a FIN')
  t.equal(parseResponse(result.data).status, 405)

  const get4MiB = await request(port, [`GET /metrics HTTP/1.1\r\nContent-Length: ${bodySize}\r\n\r\n`, Buffer.alloc(bodySize)])
  t.equal(get4MiB.error, undefined)
  t.equal(parseResponse(get4MiB.data).body.toString(), BODY, 'a GET with a body is still a scrape')
})

t.test('a client that never reads a 16 MiB response is destroyed after lingerMs', { timeout: 8000 }, async (t) => {
  const size = 16 * 1024 * 1024
  const { port, endpoint } = await setup(t, { lingerMs: 300 }, 'x'.repeat(size - 1) + '\n')
  const accepted = nextAccepted(endpoint.server)
  const client = await connectTo(port)
  t.teardown(() => client.destroy())
  client.pause()
  const { socket: server, closed } = await accepted
  client.write('GET /metrics HTTP/1.1\r\n\r\n')
  const started = Date.now()
  await closed
  const elapsed = Date.now() - started
  t.ok(elapsed >= 250 && elapsed < 3000, `destroyed ${elapsed} ms after the request`)
  t.equal(server.writableFinished, false, 'destroyed with the response still queued')
  t.equal(endpoint.stats().open, 0)

  // A reader that leaves half-way through does not disturb the next scrape either.
  const quitter = await connectTo(port)
  quitter.write('GET /metrics HTTP/1.1\r\n\r\n')
  await once(quitter, 'data')
  quitter.destroy()
  const reply = await get(port)
  t.equal(parseResponse(reply.data).body.length, size, 'the full 16 MiB to a reader')
})

t.test('above the connection cap, a new connection is closed at once and the others served', async (t) => {
  const { port, endpoint } = await setup(t, { maxConnections: 5 })
  const clients: Socket[] = []
  const servers: Accepted[] = []
  for (let i = 0; i < 5; i++) {
    const accepted = nextAccepted(endpoint.server)
    clients.push(await connectTo(port))
    servers.push(await accepted)
  }
  t.equal(endpoint.stats().open, 5)
  const sixth = await exchange(await connectTo(port))
  t.equal(sixth.data.length, 0, 'the sixth is closed without an answer')
  t.equal(endpoint.stats().rejected, 1)
  const replies = await Promise.all(
    clients.map((client) => {
      const done = exchange(client)
      client.write('GET /metrics HTTP/1.1\r\n\r\n')
      return done
    }),
  )
  t.same(
    replies.map((reply) => parseResponse(reply.data).status),
    [200, 200, 200, 200, 200],
  )
  await Promise.all(servers.map((server) => server.closed))
  t.equal(parseResponse((await get(port)).data).status, 200, 'room again once they closed')
  t.equal(endpoint.stats().rejected, 1)
})

t.test('a failed accept is logged once, until accepting works again', async (t) => {
  const { port, endpoint, logs } = await setup(t)
  // What node emits when libuv cannot make room for an accept (EMFILE with its reserve fd gone).
  const emfile = () => Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' })
  endpoint.server.emit('error', emfile())
  endpoint.server.emit('error', emfile())
  t.same(logs, [
    'cannot accept a connection (EMFILE): accept EMFILE; raise the open file limit (ulimit -n) or lower --max-connections',
  ])
  t.equal(parseResponse((await get(port)).data).status, 200, 'still serving')
  endpoint.server.emit('error', emfile())
  t.equal(logs.length, 2, 'a new episode after a good accept is logged again')
})

t.test(
  'out of file descriptors, the endpoint keeps running and serves again once they are back',
  // prlimit is util-linux, part of every Debian system: missing, this test fails rather than skips
  { timeout: 8000 },
  async (t) => {
    const { port, endpoint } = await setup(t)
    const setSoftLimit = (limit: string) => execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${limit}:`])
    const original = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))![1]!
    t.teardown(() => setSoftLimit(original))

    // Leave 16 descriptors free, then open 24 client sockets: the clients take the last free
    // ones, so the endpoint's accept() fails with EMFILE. 16 leaves room to run prlimit again.
    setSoftLimit(String(readdirSync('/proc/self/fd').length + 15))
    const clients = Array.from({ length: 24 }, () => {
      const client = connect({ port, host: '127.0.0.1' })
      client.on('connect', () => client.write('GET /metrics HTTP/1.1\r\n\r\n'))
      return exchange(client)
    })
    const results = await Promise.all(clients)
    setSoftLimit(original)
    t.ok(results.some((result) => result.error?.code === 'EMFILE'), 'the limit was hit')
    t.ok(
      results.some((result) => result.error?.code !== 'EMFILE' && result.data.length === 0),
      'a connection was dropped without an answer: its accept failed',
    )
    const accepted = nextAccepted(endpoint.server)
    t.equal(parseResponse((await get(port)).data).status, 200, 'serves again')
    await (await accepted).closed
    t.equal(endpoint.stats().open, 0, 'no socket left behind')
  },
)

// listen() and close(): errors as they are, a bounded graceful shutdown, safe to repeat.
import { once } from 'node:events'
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { createEndpoint } from '../src/server/endpoint.js'
import { connectTo, exchange, get, parseResponse, startEndpoint } from './fixtures/http-client.js'

/** The server sides of the next `count` connections the endpoint accepts. */
function accept(server: Server, count: number): Promise<Socket[]> {
  return new Promise((resolve) => {
    const sockets: Socket[] = []
    const onConnection = (socket: Socket) => {
      if (sockets.push(socket) < count) return
      server.removeListener('connection', onConnection)
      resolve(sockets)
    }
    server.on('connection', onConnection)
  })
}

function options(t: Test, body = 'a_metric 1\n') {
  const dir = t.testdir()
  writeFileSync(join(dir, 'metrics.prom'), body)
  return {
    metricsFile: join(dir, 'metrics.prom'),
    maxConnections: 512,
    headTimeoutMs: 5000,
    maxHeadBytes: 8192,
    lingerMs: 5000,
    maxFileBytes: 16 * 1024 * 1024,
    log: () => {},
  }
}

function holdsOpen(path: string): boolean {
  return readdirSync('/proc/self/fd').some((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path
    } catch {
      return false
    }
  })
}

t.test('listen() rejects with the listen error as is, and the endpoint can listen elsewhere', async (t) => {
  const blocker = createServer()
  blocker.listen(0, '127.0.0.1')
  await once(blocker, 'listening')
  t.teardown(() => blocker.close())
  const { port } = blocker.address() as AddressInfo

  const endpoint = createEndpoint(options(t))
  t.teardown(() => endpoint.close(0))
  await t.rejects(endpoint.listen(port, '127.0.0.1'), { code: 'EADDRINUSE', port })
  t.equal(endpoint.server.listenerCount('error'), 0, 'no handler of the failed listen() left behind')
  t.equal(endpoint.server.listenerCount('listening'), 0)
  const address = await endpoint.listen(0, '127.0.0.1')
  t.equal(address.address, '127.0.0.1')
  t.equal(endpoint.server.listenerCount('error'), 1, 'an error handler while listening')
  t.equal(parseResponse((await get(address.port)).data).status, 200)
})

t.test('listen() without a host listens on all interfaces', async (t) => {
  const endpoint = createEndpoint(options(t))
  t.teardown(() => endpoint.close(0))
  const address = await endpoint.listen(0)
  t.match(address.address, /^(::|0\.0\.0\.0)$/)
  t.equal(parseResponse((await get(address.port)).data).status, 200, 'reachable on 127.0.0.1')
})

t.test('close() destroys idle sockets at once, stops accepting, and can be called again', async (t) => {
  const { endpoint, port } = await startEndpoint(t, options(t))
  const accepted = accept(endpoint.server, 3)
  const clients = await Promise.all([connectTo(port), connectTo(port), connectTo(port)])
  const servers = await accepted
  const seen = clients.map(exchange)
  // A head that has begun but not ended is still waiting for its end: destroyed as well.
  clients[2]!.write('GET /metrics HTTP/1.1\r\n')
  await once(servers[2]!, 'data')
  t.equal(endpoint.stats().open, 3)

  const started = Date.now()
  const closing = endpoint.close(5000)
  t.equal(endpoint.close(), closing, 'a second call returns the same promise')
  await closing
  t.ok(Date.now() - started < 1000, `closed in ${Date.now() - started} ms, not after the grace time`)
  for (const result of await Promise.all(seen)) t.equal(result.data.length, 0)
  t.equal(endpoint.stats().open, 0)
  t.equal(endpoint.stats().responses, 0)
  t.equal(endpoint.server.listening, false)
  const [error] = await once(connect({ port, host: '127.0.0.1' }), 'error')
  t.equal((error as { code?: string }).code, 'ECONNREFUSED', 'no longer accepting')
})

t.test('close() lets a queued response finish within the grace time', async (t) => {
  const size = 4 * 1024 * 1024
  const { endpoint, port } = await startEndpoint(t, options(t, 'x'.repeat(size - 1) + '\n'))
  const accepted = accept(endpoint.server, 1)
  const client = await connectTo(port)
  const [server] = (await accepted) as [Socket]
  client.pause()
  const done = exchange(client)
  client.write('GET /metrics HTTP/1.1\r\n\r\n')
  await once(server, 'data')
  const closing = endpoint.close(3000)
  let closed = false
  void closing.then(() => {
    closed = true
  })
  // The client has not read yet: the response is still queued and close() is waiting for it.
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(closed, false)
  client.resume()
  const result = await done
  t.equal(parseResponse(result.data).body.length, size, 'the whole response arrived')
  t.equal(result.error, undefined)
  await closing
  t.same(endpoint.stats().byStatus, { 200: 1 })
})

t.test('close() destroys a response still queued when the grace time ends', async (t) => {
  const size = 16 * 1024 * 1024
  const { endpoint, port } = await startEndpoint(t, options(t, 'x'.repeat(size - 1) + '\n'))
  const accepted = once(endpoint.server, 'connection') as Promise<[Socket]>
  const client = await connectTo(port)
  t.teardown(() => client.destroy())
  const [server] = await accepted
  client.pause()
  client.write('GET /metrics HTTP/1.1\r\n\r\n')
  await once(server, 'data')
  const started = Date.now()
  await endpoint.close(200)
  const elapsed = Date.now() - started
  t.ok(elapsed >= 190 && elapsed < 2000, `closed after ${elapsed} ms`)
  t.equal(server.destroyed, true)
  t.equal(endpoint.stats().open, 0)
})

t.test('close() before listen() resolves, and releases the metrics file', async (t) => {
  const opts = options(t)
  const endpoint = createEndpoint(opts)
  await endpoint.close()
  const { endpoint: served, port } = await startEndpoint(t, opts)
  await get(port)
  t.equal(holdsOpen(opts.metricsFile), true, 'the current version is held open while serving')
  await served.close()
  t.equal(holdsOpen(opts.metricsFile), false, 'released by close()')
})

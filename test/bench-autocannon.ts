// The bench's correction of autocannon for servers that close after every response: latency
// must not grow with the run length, and the client's count must match the server's.

import { once } from 'node:events'
import { createServer, type Server } from 'node:net'
import t, { type Test } from 'tap'
import { runAutocannon } from '../bench/load.mjs'

const DELAY_MS = 20

/** Answers every request exactly DELAY_MS after its head arrived, then closes; counts what it served. */
async function slowClosingServer(test: Test, { contentLength = true } = {}) {
  let served = 0
  const server: Server = createServer((socket) => {
    socket.on('error', () => {})
    let head = ''
    socket.on('data', (chunk) => {
      if (head === '\0') return // answered: discard the rest, never reset
      head += chunk.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      head = '\0'
      setTimeout(() => {
        const body = 'ok\n'
        const length = contentLength ? `Content-Length: ${body.length}\r\n` : ''
        socket.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n${length}Connection: close\r\n\r\n${body}`)
        served += 1
      }, DELAY_MS)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  test.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}/metrics`, served: () => served }
}

for (const seconds of [2, 6]) {
  t.test(`corrected: p50 is the server's ${DELAY_MS} ms in a ${seconds} s run`, async (t) => {
    const server = await slowClosingServer(t)
    const run = await runAutocannon({ url: server.url, seconds })
    t.ok(run.latencyMs.p50! >= DELAY_MS && run.latencyMs.p50! <= DELAY_MS + 5, `p50 ${run.latencyMs.p50} ms within ${DELAY_MS}-${DELAY_MS + 5} ms`)
    t.ok(run.responses > seconds * 100, `${run.responses} responses`)
    t.equal(run.status2xx, server.served(), 'every response the server sent was counted, no more')
    t.equal(run.errors, 0)
    t.equal(run.timeouts, 0)
    t.equal(run.wire!.connectionsOpened, run.responses, 'one connection per request')
  })
}

t.test('corrected: a body that ends at the close (no Content-Length) is a complete response', async (t) => {
  const server = await slowClosingServer(t, { contentLength: false })
  const run = await runAutocannon({ url: server.url, seconds: 1 })
  t.equal(run.status2xx, server.served())
  t.ok(run.responses > 0)
  t.equal(run.errors, 0)
})

t.test('uncorrected autocannon reports latency that grows with the run length', async (t) => {
  const server = await slowClosingServer(t)
  const run = await runAutocannon({ url: server.url, seconds: 2, corrected: false })
  // Each response is matched to a request one cycle older than the last: half the run, not 20 ms.
  t.ok(run.latencyMs.p50! > 10 * DELAY_MS, `uncorrected p50 ${run.latencyMs.p50} ms`)
})

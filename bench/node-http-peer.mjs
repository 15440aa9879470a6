// The node:http peer: reads the metrics file on every request, as most Node exporters do.
// Usage: node bench/node-http-peer.mjs PORT FILE. Prints its served count on SIGTERM, as ours does.

import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'

const [port, file] = process.argv.slice(2)
let served = 0
let served200 = 0

const server = createServer(async (req, res) => {
  try {
    const body = await readFile(file)
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': body.length })
    res.end(body)
    served200 += 1
  } catch (error) {
    res.writeHead(503, { 'content-type': 'text/plain' })
    res.end(`${error.code ?? error.message}\n`)
  }
  served += 1
})

server.listen(Number(port), '127.0.0.1', () => {
  process.stderr.write(`node-http-peer: listening on ${port}\n`)
})

process.on('SIGTERM', () => {
  server.close()
  server.closeAllConnections()
  process.stderr.write(`node-http-peer: stopped; served ${served} responses (${served200} 200 OK)\n`)
  process.exit(0)
})

// A metrics file that is missing or broken is a 503 that says why, and the endpoint recovers
// by itself once the file is back.
import { execFileSync } from 'node:child_process'
import { mkdirSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { get, parseResponse, startEndpoint } from './fixtures/http-client.js'

function text503(reason: string): string {
  return (
    'HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(reason) + 1}\r\nConnection: close\r\n\r\n${reason}\n`
  )
}

t.test('missing, a directory, a FIFO, empty, too large: each a 503 with its reason, then recovery', async (t) => {
  const dir = t.testdir()
  const file = join(dir, 'metrics.prom')
  const { port, endpoint, logs } = await startEndpoint(t, { metricsFile: file, maxFileBytes: 100 })
  const body = async () => (await get(port)).data.toString()
  const recover = async (content: string) => {
    writeFileSync(`${file}.tmp`, content)
    renameSync(`${file}.tmp`, file)
    t.equal(parseResponse((await get(port)).data).body.toString(), content, 'recovered')
  }

  t.equal(await body(), text503(`metrics file ${file} is not available yet (ENOENT)`), 'missing')
  t.equal(await body(), text503(`metrics file ${file} is not available yet (ENOENT)`), 'still missing')
  await recover('a 1\n')

  unlinkSync(file)
  mkdirSync(file)
  t.equal(await body(), text503(`metrics file ${file} is not a regular file`), 'a directory')
  rmdirSync(file)
  await recover('a 2\n')

  unlinkSync(file)
  execFileSync('mkfifo', [file])
  t.equal(await body(), text503(`metrics file ${file} is not a regular file`), 'a FIFO, answered at once')
  unlinkSync(file)
  await recover('a 3\n')

  writeFileSync(file, '')
  t.equal(await body(), text503(`metrics file ${file} is empty`), 'empty')
  await recover('a 4\n')

  writeFileSync(file, 'x'.repeat(101))
  t.equal(await body(), text503(`metrics file ${file} is larger than 100 bytes (101)`), 'too large')
  await recover('a 5\n')

  const head = (await get(port, '/nope')).data.toString()
  t.match(head, /^HTTP\/1\.1 404 /, 'other routes do not depend on the file')
  unlinkSync(file)
  t.equal(
    (await get(port, '/metrics', [], 'HEAD')).data.toString(),
    text503(`metrics file ${file} is not available yet (ENOENT)`).replace(/metrics file [^\n]*\n$/, ''),
    'HEAD of a 503 has no body',
  )
  t.equal(parseResponse((await get(port, '/healthz')).data).status, 200, '/healthz is about the process, not the file')
  t.equal(endpoint.stats().byStatus[503], 7)
  t.equal(logs.length, 6, 'each outage logged once')
  t.match(logs[0], /^metrics file .* is not available yet \(ENOENT\); answering 503 until it is fixed$/)
})

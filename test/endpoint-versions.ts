// The body is the file as it is when the request arrives: never older, never a mix of two versions.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import t from 'tap'
import { get, parseResponse, startEndpoint } from './fixtures/http-client.js'

// Version n of the file: every line names n, and the last line says how many came before it,
// so a body that mixes two versions or stops short is caught. Sizes vary with n; versions a
// multiple of 7 apart with as many digits have the same size.
const CONTENT = `(n) => {
  const lines = 20 + (n % 7) * 30
  let text = ''
  for (let i = 0; i < lines; i++) text += 'v{n="' + n + '",i="' + i + '"} ' + n + '\\n'
  return text + 'end ' + n + ' ' + lines + '\\n'
}`
const content = eval(CONTENT) as (n: number) => string

/** The version a body is, or an error message saying why it is not one complete version. */
function versionOf(body: string): number | string {
  const match = /^end (\d+) (\d+)\n$/m.exec(body)
  if (match === null) return `no end line in ${JSON.stringify(body.slice(-60))}`
  const n = Number(match[1])
  return body === content(n) ? n : `not one complete version ${n}`
}

t.test('a file replaced 1,000 times during 2,000 scrapes: every body is one complete version', { timeout: 20000 }, async (t) => {
  const dir = t.testdir()
  const file = join(dir, 'metrics.prom')
  writeFileSync(file, content(0))
  const { port, endpoint } = await startEndpoint(t, { metricsFile: file })

  // A separate process, so replacing really runs at the same time as serving.
  const writer = spawn(
    process.execPath,
    [
      '-e',
      `const fs = require('node:fs')
      const content = ${CONTENT}
      const [file, count] = [process.argv[1], Number(process.argv[2])]
      const pause = new Int32Array(new SharedArrayBuffer(4))
      for (let n = 1; n <= count; n++) {
        fs.writeFileSync(file + '.tmp', content(n))
        fs.renameSync(file + '.tmp', file)
        if (n === 1) process.stdout.write('started\\n')
        Atomics.wait(pause, 0, 0, 1)
      }`,
      file,
      '1000',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  t.teardown(() => {
    if (writer.exitCode === null) process.kill(writer.pid!)
  })
  const writing = once(writer, 'exit')
  let writerDone = false
  void writing.then(() => {
    writerDone = true
  })
  await once(writer.stdout, 'data')

  const problems: string[] = []
  const seen = new Set<number>()
  let scrapes = 0
  // 8 clients in parallel, each scraping in sequence: a client must never see a version go
  // back, since each of its requests starts after the previous one was answered.
  const client = async (gzip: boolean) => {
    let last = -1
    while (scrapes < 2000 || !writerDone) {
      scrapes++
      const response = parseResponse((await get(port, '/metrics', gzip ? ['Accept-Encoding: gzip'] : [])).data)
      if (response.status !== 200) {
        problems.push(`status ${response.status}`)
        continue
      }
      const version = versionOf((gzip ? gunzipSync(response.body) : response.body).toString())
      if (typeof version === 'string') problems.push(version)
      else if (version < last) problems.push(`version ${version} after ${last}`)
      else {
        last = version
        seen.add(version)
      }
    }
  }
  await Promise.all([false, true, false, true, false, true, false, true].map(client))
  const [code] = await writing
  t.equal(code, 0, 'the writer replaced the file 1,000 times')
  t.same(problems.slice(0, 10), [], 'every body one complete version, never older')
  t.ok(scrapes >= 2000, `${scrapes} scrapes`)
  t.ok(seen.size >= 100, `${seen.size} distinct versions seen while replacing`)
  t.equal(endpoint.stats().byStatus[200], scrapes)
})

t.test('a request after a rename sees the new content, same size or not', async (t) => {
  const dir = t.testdir()
  const file = join(dir, 'metrics.prom')
  writeFileSync(file, content(0))
  const { port } = await startEndpoint(t, { metricsFile: file })
  t.equal(parseResponse((await get(port)).data).body.toString(), content(0))
  // 10, 17, 24, ... have the same size: only the inode tells those versions apart.
  for (const n of [1, 2, 10, 17, 24, 31, 38, 45, 52, 59, 3, 4]) {
    writeFileSync(`${file}.tmp`, content(n))
    renameSync(`${file}.tmp`, file)
    t.equal(parseResponse((await get(port)).data).body.toString(), content(n), `version ${n}`)
    const gzip = parseResponse((await get(port, '/metrics', ['Accept-Encoding: gzip'])).data)
    t.equal(gunzipSync(gzip.body).toString(), content(n), `version ${n} gzipped`)
  }
})

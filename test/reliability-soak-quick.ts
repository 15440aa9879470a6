// `make soak` in miniature (5 s instead of 10 minutes): the real exporter under 100 scrapes/s
// with a collection every second and a job every 100 ms. No failed scrape, every job counted
// exactly once, a clean stop. (Trends need the long run: slopes are not asserted here.)
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { killOnExit, stopChild } from './fixtures/exporter.js'
import { spawnPlainNode } from './fixtures/exporter.js'

const SOAK = fileURLToPath(new URL('../bench/soak.mjs', import.meta.url))

t.test('a 5-second soak: zero failed scrapes, every job counted once, a clean stop', async (t) => {
  const results = join(t.testdir({}), 'soak.json')
  const child = spawnPlainNode([SOAK], { env: { SOAK_SECONDS: '5', SOAK_RESULTS: results }, stdio: ['ignore', 'pipe', 'pipe'] })
  killOnExit(child)
  t.teardown(() => stopChild(child))
  let output = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const [code] = (await once(child, 'exit')) as [number | null]
  t.equal(code, 0, `the soak passed:\n${output}`)
  t.match(output, /^scrapes +\d+ \(.*\), 0 failed$/m, 'it prints its table')

  const result = JSON.parse(readFileSync(results, 'utf8'))
  t.equal(result.scrapes.failed, 0, 'no failed scrape')
  t.ok(result.scrapes.total >= 400, `about 100 scrapes/s (${result.scrapes.total} in 5 s)`)
  t.ok(result.jobs.writtenTotal >= 40, `a job every 100 ms (${result.jobs.writtenTotal})`)
  t.same(result.jobs.counted, result.jobs.written, 'every job written is counted exactly once, by status')
  t.equal(result.exporter.exitCode, 0)
  t.equal(result.exporter.served, result.exporter.scrapesSent, 'the exporter served exactly the scrapes sent')
  t.ok(result.samples.length >= 5, 'RSS and descriptors were sampled')
  t.same(result.problems, [])
})

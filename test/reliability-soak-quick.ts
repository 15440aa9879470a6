// `make soak` in miniature (5 s instead of 10 minutes): the real exporter under 100 scrapes/s
// with a collection every second and a job every 100 ms. No failed scrape, every job counted
// exactly once, a clean stop. (Trends need the long run: slopes are not asserted here.) And the
// soak's heap probe finds a leak planted in the collector's thread.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { killOnExit, spawnPlainNode, stopChild } from './fixtures/exporter.js'

const SOAK = fileURLToPath(new URL('../bench/soak.mjs', import.meta.url))
const PLANTED_LEAK = fileURLToPath(new URL('./fixtures/planted-leak.mjs', import.meta.url))

/** Runs bench/soak.mjs to its end: its exit code, its output and its JSON result. */
async function runSoak(t: Test, env: Record<string, string>) {
  const results = join(t.testdir({}), 'soak.json')
  const child = spawnPlainNode([SOAK], { env: { ...env, SOAK_RESULTS: results }, stdio: ['ignore', 'pipe', 'pipe'] })
  killOnExit(child)
  t.teardown(() => stopChild(child))
  let output = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const [code] = (await once(child, 'exit')) as [number | null]
  return { code, output, result: JSON.parse(readFileSync(results, 'utf8')) }
}

t.test('a 5-second soak: zero failed scrapes, every job counted once, a clean stop', async (t) => {
  const { code, output, result } = await runSoak(t, { SOAK_SECONDS: '5' })
  t.equal(code, 0, `the soak passed:\n${output}`)
  t.match(output, /^scrapes +\d+ \(.*\), 0 failed$/m, 'it prints its table')

  t.equal(result.scrapes.failed, 0, 'no failed scrape')
  t.ok(result.scrapes.total >= 400, `about 100 scrapes/s (${result.scrapes.total} in 5 s)`)
  t.ok(result.jobs.writtenTotal >= 40, `a job every 100 ms (${result.jobs.writtenTotal})`)
  t.same(result.jobs.counted, result.jobs.written, 'every job written is counted exactly once, by status')
  t.equal(result.exporter.exitCode, 0)
  t.equal(result.exporter.served, result.exporter.scrapesSent, 'the exporter served exactly the scrapes sent')
  t.ok(result.samples.length >= 5, 'RSS and descriptors were sampled')
  t.same(result.problems, [])
})

t.test('the heap probe finds a leak planted in the collector thread and names what grew', async (t) => {
  const { code, output, result } = await runSoak(t, { SOAK_SECONDS: '10', SOAK_HEAP_PROBE: '1', SOAK_NODE_ARGS: `--import ${PLANTED_LEAK}` })
  t.equal(code, 1, `the soak failed:\n${output}`)
  const { collector, endpoint } = result.heapProbe
  t.ok(collector.samples >= 8 && endpoint.samples >= 8, 'both threads were probed about once a second')
  t.ok(collector.growth.dataBytesPerMinute > 100 * 1024, `the collector's data grew fast (${collector.growth.dataBytesPerMinute} B/min)`)
  t.ok(collector.growth.largestData.some((row: { key: string }) => row.key === 'object:PlantedLeak'), 'the planted objects are among the largest growth')
  t.ok(endpoint.growth.dataBytes < 16 * 1024, `the endpoint thread has no such growth (${endpoint.growth.dataBytes} B)`)
  t.same(result.problems.filter((problem: string) => /heap data grew/.test(problem)).length, 1, 'one leak is reported')
  t.match(result.problems.join('\n'), /^the collector thread's heap data grew by .*object:PlantedLeak/m)
  t.equal(result.scrapes.failed, 0, 'the probe does not fail scrapes')
})

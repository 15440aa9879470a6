// The heap trim runs forced full GCs on its interval, stops when told, and never keeps a
// process alive.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks'
import t from 'tap'
import { startHeapTrim } from '../src/heap-trim.js'

/** Counts this thread's forced full GCs (what `gc()` runs) while it is open. */
function watchForcedGcs() {
  const watch = { count: 0, waiters: [] as Array<{ count: number; resolve: () => void }> }
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries() as Array<PerformanceEntry & { detail: { kind: number; flags: number } }>) {
      if (entry.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR && (entry.detail.flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0) watch.count++
    }
    for (const waiter of watch.waiters.filter((waiter) => watch.count >= waiter.count)) waiter.resolve()
  })
  observer.observe({ entryTypes: ['gc'] })
  return {
    get count() {
      return watch.count
    },
    reached: (count: number) => new Promise<void>((resolve) => watch.waiters.push({ count, resolve })),
    close: () => observer.disconnect(),
  }
}

t.test('runs a forced full GC on every interval, and no more once stopped', async (t) => {
  const gcs = watchForcedGcs()
  t.teardown(() => gcs.close())
  const stop = startHeapTrim(20)
  // The trim's timer is unref'd: something else must keep this process up while we wait.
  const keepAlive = setTimeout(() => t.fail('no third forced GC within 10 s'), 10_000)
  await gcs.reached(3)
  clearTimeout(keepAlive)
  stop()
  const atStop = gcs.count
  t.ok(atStop >= 3, `forced full GCs while it ran (${atStop})`)
  // Absence cannot be awaited: ten intervals without one is the bound.
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(gcs.count, atStop, 'none after stop()')
  t.equal((globalThis as { gc?: unknown }).gc, undefined, 'gc is not put on the global object')
})

t.test('never keeps a process alive', async (t) => {
  // The built module: a plain node cannot load TypeScript (`make test` builds first).
  const trim = new URL('../dist/heap-trim.js', import.meta.url).href
  const child = spawn(process.execPath, ['--input-type=module', '-e', `import { startHeapTrim } from '${trim}'; startHeapTrim(10)`], { stdio: 'inherit' })
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  const [code] = await once(child, 'exit')
  clearTimeout(timer)
  t.equal(code, 0, 'the process exited by itself')
})

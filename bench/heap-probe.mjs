// A diagnostic preload for `make soak` (SOAK_HEAP_PROBE): loaded with `--expose-gc --import` into
// every thread of the exporter (Node runs --import preloads in worker threads too). Every
// HEAP_PROBE_MS it forces a full GC in its thread and appends what is still alive to
// HEAP_PROBE_FILE, one JSON line per thread per sample: RSS alone cannot tell a leak from V8
// keeping the heap capacity it grew under load, the live heap after a full GC can. At the
// samples listed in HEAP_PROBE_SNAPSHOTS (1-based, comma-separated) it also writes a heap
// snapshot next to HEAP_PROBE_FILE, so that the soak can say which objects grew.

import { appendFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8'
import { isMainThread } from 'node:worker_threads'

const file = process.env.HEAP_PROBE_FILE
const periodMs = Number(process.env.HEAP_PROBE_MS)
const QUIET_TRIES = 1000
const snapshotsAt = new Set((process.env.HEAP_PROBE_SNAPSHOTS ?? '').split(',').filter((n) => n !== '').map(Number))

if (file && periodMs > 0 && typeof globalThis.gc === 'function') {
  const thread = isMainThread ? 'endpoint' : 'collector'
  let taken = 0
  const probe = () => {
    taken++
    globalThis.gc()
    const heap = getHeapStatistics()
    const { external, arrayBuffers } = process.memoryUsage()
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((space) => [space.space_name, space.space_used_size]))
    const sample = { thread, n: taken, at: Date.now(), liveBytes: heap.used_heap_size, heapBytes: heap.total_heap_size, mallocedBytes: heap.malloced_memory, externalBytes: external, arrayBufferBytes: arrayBuffers, spaces }
    appendFileSync(file, `${JSON.stringify(sample)}\n`)
    if (snapshotsAt.has(taken)) snapshotWhenQuiet(taken, QUIET_TRIES)
  }
  // A scrape in flight holds buffers and socket objects (8 KiB and more) that would look like
  // growth: wait (a few ms at most under the soak's load) for a moment with no connection open.
  const snapshotWhenQuiet = (n, tries) => {
    if (tries > 0 && process.getActiveResourcesInfo().includes('TCPSocketWrap')) return setTimeout(snapshotWhenQuiet, 1, n, tries - 1)
    const snapshot = writeHeapSnapshot(join(dirname(file), `heap-${thread}-${n}.heapsnapshot`))
    appendFileSync(file, `${JSON.stringify({ thread, n, at: Date.now(), snapshot })}\n`)
  }
  // unref: the probe must never keep a thread alive or change how the exporter stops.
  setInterval(probe, periodMs).unref()
}

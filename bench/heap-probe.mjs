// A diagnostic preload for `make soak` (SOAK_HEAP_PROBE): loaded with `--expose-gc --import` into
// every thread of the exporter (Node runs --import preloads in worker threads too). Every
// HEAP_PROBE_MS it forces a full GC in its thread and appends what is still alive to
// HEAP_PROBE_FILE, one JSON line per thread per sample: RSS alone cannot tell a leak from V8
// keeping the heap capacity it grew under load, the live heap after a full GC can.

import { appendFileSync } from 'node:fs'
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8'
import { isMainThread } from 'node:worker_threads'

const file = process.env.HEAP_PROBE_FILE
const periodMs = Number(process.env.HEAP_PROBE_MS)

if (file && periodMs > 0 && typeof globalThis.gc === 'function') {
  const thread = isMainThread ? 'endpoint' : 'collector'
  const probe = () => {
    globalThis.gc()
    const heap = getHeapStatistics()
    const { external, arrayBuffers } = process.memoryUsage()
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((space) => [space.space_name, space.space_used_size]))
    const sample = { thread, at: Date.now(), liveBytes: heap.used_heap_size, heapBytes: heap.total_heap_size, mallocedBytes: heap.malloced_memory, externalBytes: external, arrayBufferBytes: arrayBuffers, spaces }
    appendFileSync(file, `${JSON.stringify(sample)}\n`)
  }
  // unref: the probe must never keep a thread alive or change how the exporter stops.
  setInterval(probe, periodMs).unref()
}

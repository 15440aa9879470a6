// The collector worker's entry: a thin adapter over parentPort (code here is invisible to
// coverage, so everything it does lives in worker-loop.ts).

import { parentPort, workerData } from 'node:worker_threads'
import type { CollectorSettings } from './messages.js'
import { runCollectorLoop } from './worker-loop.js'

/* c8 ignore next 3 -- runs only inside the worker thread, where coverage cannot see it */
if (parentPort === null) throw new Error('collector/worker.js runs only as a worker thread')
runCollectorLoop(workerData as CollectorSettings, parentPort)

// Everything the collector worker does, written against a port so it runs (and is tested) in
// the main thread too; worker.ts only hands it `parentPort` and `workerData`.

import { startHeapTrim } from '../heap-trim.js'
import { Collector } from './collect.js'
import { isSupervisorMessage, type CollectorSettings, type WorkerMessage } from './messages.js'
import { startSchedule, type Clock, systemClock } from './schedule.js'

export interface SupervisorPort {
  postMessage(message: WorkerMessage): void
  on(event: 'message', listener: (message: unknown) => void): unknown
  close(): void
}

/**
 * Collects at once, reports `ready`, then collects on the interval's deadlines, and whenever the
 * supervisor asks for it (trimming this thread's heap every 30 s), until the supervisor says `stop` (which lets the current collection
 * finish, closes the job log, then closes the port so the thread can exit by itself).
 * Collections never overlap.
 */
export function runCollectorLoop(settings: CollectorSettings, port: SupervisorPort, clock: Clock = systemClock): void {
  const collector = new Collector({
    ...settings,
    log: (message) => port.postMessage({ type: 'log', message }),
  })
  let ready = false
  let stopped = false
  // Every collection chains onto the previous one, so an extra one never runs alongside.
  let last: Promise<unknown> = Promise.resolve()
  const collect = (): Promise<unknown> => {
    last = last.then(() => (stopped ? undefined : collector.collectOnce()))
    return last
  }
  const stopHeapTrim = startHeapTrim()
  const schedule = startSchedule(settings.intervalSeconds * 1000, async () => {
    await collect()
    if (!ready) {
      ready = true
      port.postMessage({ type: 'ready' })
    }
  }, clock)

  port.on('message', (message) => {
    if (!isSupervisorMessage(message)) {
      throw new Error(`collector worker got an unknown message: ${JSON.stringify(message)}`)
    }
    if (message.type === 'collect') {
      void collect()
      return
    }
    stopped = true
    schedule.stop()
    stopHeapTrim()
    void last.finally(() => collector.close()).finally(() => port.close())
  })
}

// The messages the supervisor (main thread) and the collector worker exchange: one
// discriminated union per direction. Anything else arriving is a bug, not something to guess at.

/** What the worker is started with (`workerData`). */
export interface CollectorSettings {
  jobsLog: string
  metricsFile: string
  runnerName: string
  runnerType: string
  intervalSeconds: number
  /** When the exporter started (epoch ms), for github_runner_uptime_seconds. */
  startedAtMs: number
}

export type WorkerMessage =
  /** Sent once, after the first collection, so the first scrape already has data. */
  | { type: 'ready' }
  /** A line for the exporter's stderr (the worker has no say over how the process logs). */
  | { type: 'log'; message: string }

export type SupervisorMessage =
  /** Finish the current collection, then exit. */
  | { type: 'stop' }
  /** Collect now, off the schedule (a job just finished); the schedule's grid does not move. */
  | { type: 'collect' }

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  if (typeof value !== 'object' || value === null) return false
  const message = value as { type?: unknown; message?: unknown }
  if (message.type === 'ready') return true
  return message.type === 'log' && typeof message.message === 'string'
}

export function isSupervisorMessage(value: unknown): value is SupervisorMessage {
  if (typeof value !== 'object' || value === null) return false
  const type = (value as { type?: unknown }).type
  return type === 'stop' || type === 'collect'
}

// The main-thread side of the collector: starts the worker and waits for its `ready`, restarts
// it with backoff if it dies after that (the endpoint keeps serving the last good file
// meanwhile, and the dead worker's temp file is removed), and stops it gracefully first, then
// by force.

import { Worker, type ResourceLimits } from 'node:worker_threads'
import { removeOwnTempFiles } from '../atomic-write.js'
import { RunnerMetricsError } from '../errors.js'
import type { Log } from '../log.js'
import { isWorkerMessage, type CollectorSettings, type SupervisorMessage } from './messages.js'

export interface SupervisorOptions {
  settings: CollectorSettings
  log: Log
  workerUrl?: URL
  /** Delay before the first restart; doubles for each crash in a row, up to `maxRestartDelayMs`. */
  restartDelayMs?: number
  maxRestartDelayMs?: number
  /** A worker that stays up this long counts as healthy: the next crash starts the backoff over. */
  healthyAfterMs?: number
  /** The first collection of a huge log can take seconds; a worker silent longer than this is stuck. */
  startTimeoutMs?: number
  resourceLimits?: ResourceLimits
}

// The collector keeps O(1) state: small heaps keep the exporter inside its 50 MB budget and turn
// a runaway into a worker restart instead of a bloated process.
const DEFAULT_RESOURCE_LIMITS: ResourceLimits = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 4, stackSizeMb: 1 }

export class CollectorSupervisor {
  readonly #options: Required<Omit<SupervisorOptions, 'workerUrl'>> & { workerUrl: URL }
  #worker: Worker | undefined
  #restartTimer: NodeJS.Timeout | undefined
  #restartDelayMs: number
  #stopping: Promise<void> | undefined
  #restarts = 0

  constructor(options: SupervisorOptions) {
    this.#options = {
      workerUrl: new URL('./worker.js', import.meta.url),
      restartDelayMs: 100,
      maxRestartDelayMs: 30_000,
      healthyAfterMs: 60_000,
      startTimeoutMs: 60_000,
      resourceLimits: DEFAULT_RESOURCE_LIMITS,
      ...options,
    }
    this.#restartDelayMs = this.#options.restartDelayMs
  }

  get restarts(): number {
    return this.#restarts
  }

  /** Resolves once the first collection is done; rejects with ERR_WORKER_START if it cannot start. */
  start(): Promise<void> {
    return this.#spawn()
  }

  #spawn(): Promise<void> {
    const { settings, log, workerUrl, resourceLimits, startTimeoutMs } = this.#options
    const worker = new Worker(workerUrl, { workerData: settings, resourceLimits })
    this.#worker = worker
    let readyAt: number | undefined
    let failure: Error | undefined

    return new Promise((resolve, reject) => {
      const startTimer = setTimeout(() => {
        failure = new Error(`no ready message within ${startTimeoutMs} ms`)
        void worker.terminate()
      }, startTimeoutMs)

      worker.on('message', (message: unknown) => {
        if (!isWorkerMessage(message)) {
          failure = new RunnerMetricsError('ERR_WORKER_PROTOCOL', `collector worker sent an unknown message: ${JSON.stringify(message)}`)
          log(`bug: ${failure.message}; restarting it`)
          void worker.terminate()
        } else if (message.type === 'log') {
          log(message.message)
        } else if (readyAt === undefined) {
          readyAt = Date.now()
          clearTimeout(startTimer)
          resolve()
        }
      })
      worker.on('error', (error) => {
        failure = error
      })
      worker.on('exit', (code) => {
        clearTimeout(startTimer)
        if (this.#worker === worker) this.#worker = undefined
        // A worker that died half-way through a write left its temp file behind; no worker runs
        // now, so every temp file of this process is such a leftover. Restarts must not pile them up.
        removeOwnTempFiles(settings.metricsFile)
        if (readyAt === undefined) {
          const reason = failure?.message ?? `exit code ${code}`
          reject(new RunnerMetricsError('ERR_WORKER_START', `collector worker failed to start: ${reason}`, { cause: failure }))
          return
        }
        if (this.#stopping !== undefined) return
        if (Date.now() - readyAt >= this.#options.healthyAfterMs) this.#restartDelayMs = this.#options.restartDelayMs
        const reason = failure === undefined ? `exit code ${code}` : failure.message
        log(`collector worker died (${reason}); restarting it in ${this.#restartDelayMs} ms, serving the last good file meanwhile`)
        this.#scheduleRestart()
      })
    })
  }

  #scheduleRestart(): void {
    const delay = this.#restartDelayMs
    this.#restartDelayMs = Math.min(delay * 2, this.#options.maxRestartDelayMs)
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined
      this.#restarts++
      this.#spawn().catch((error: Error) => {
        if (this.#stopping !== undefined) return
        this.#options.log(`${error.message}; retrying in ${this.#restartDelayMs} ms`)
        this.#scheduleRestart()
      })
    }, delay)
  }

  /** Asks a running worker for a collection now (a job just finished); a no-op otherwise. */
  collectNow(): void {
    if (this.#stopping === undefined) this.#worker?.postMessage({ type: 'collect' } satisfies SupervisorMessage)
  }

  /** Asks the worker to finish its current collection and exit; terminates it after `graceMs`. */
  stop(graceMs = 300): Promise<void> {
    this.#stopping ??= this.#stop(graceMs)
    return this.#stopping
  }

  async #stop(graceMs: number): Promise<void> {
    clearTimeout(this.#restartTimer)
    const worker = this.#worker
    if (worker === undefined) return
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
    worker.postMessage({ type: 'stop' } satisfies SupervisorMessage)
    const forced = setTimeout(() => void worker.terminate(), graceMs)
    await exited
    clearTimeout(forced)
  }
}

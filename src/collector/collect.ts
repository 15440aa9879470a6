// One collection: read what the job log gained, render the exposition, check it, replace the
// metrics file atomically. Failures are counted (github_runner_collector_errors_total), logged
// once per kind, and leave the last good file in place; the next collection tries again.

import { writeFileAtomic } from '../atomic-write.js'
import { errnoCode } from '../errors.js'
import { createOnceLog, type Log } from '../log.js'
import { VERSION } from '../version.js'
import { checkExposition, renderExposition } from './exposition.js'
import { JobLogReader } from './job-log.js'
import { readProcessStats } from './process-stats.js'

export interface CollectorOptions {
  jobsLog: string
  metricsFile: string
  runnerName: string
  runnerType: string
  startedAtMs: number
  log: Log
  /** Wall clock in epoch ms; injectable for tests. */
  now?: () => number
}

export interface CollectionResult {
  /** The metrics file was replaced and the job log was read without error. */
  ok: boolean
  /** The metrics file was replaced (also when only the job log could not be read). */
  written: boolean
}

export class Collector {
  readonly #options: CollectorOptions
  readonly #reader: JobLogReader
  readonly #problems: ReturnType<typeof createOnceLog>
  readonly #now: () => number
  #errorsTotal = 0
  #lastSuccessEpochSeconds: number | undefined

  constructor(options: CollectorOptions) {
    this.#options = options
    this.#reader = new JobLogReader(options.jobsLog)
    this.#problems = createOnceLog(options.log)
    this.#now = options.now ?? Date.now
  }

  get errorsTotal(): number {
    return this.#errorsTotal
  }

  /** Lets a collection in progress finish its read, then closes the job log the reader holds open. */
  close(): Promise<void> {
    return this.#reader.close()
  }

  async collectOnce(): Promise<CollectionResult> {
    const startedAt = this.#now()
    const logRead = await this.#readJobLog()
    const durationSeconds = (this.#now() - startedAt) / 1000
    const text = renderExposition({
      runner: { name: this.#options.runnerName, type: this.#options.runnerType, version: VERSION },
      uptimeSeconds: Math.max(0, (startedAt - this.#options.startedAtMs) / 1000),
      counts: this.#reader.counts,
      collector: {
        errorsTotal: this.#errorsTotal,
        lastSuccessEpochSeconds: logRead ? startedAt / 1000 : this.#lastSuccessEpochSeconds,
        durationSeconds,
      },
      process: readProcessStats(),
    })

    const problems = checkExposition(text)
    if (problems.length > 0) {
      this.#fail('exposition', `rendered metrics failed their self-check, not published: ${problems.join('; ')}`)
      return { ok: false, written: false }
    }

    try {
      const { inPlace } = await writeFileAtomic(this.#options.metricsFile, text)
      if (inPlace) {
        this.#problems.once(
          'write:in-place',
          `warning: cannot rename over ${this.#options.metricsFile} (EBUSY: a bind-mounted file?); rewriting it in place, so a scrape may see a partial file`,
        )
      }
    } catch (error) {
      const code = errnoCode(error) ?? 'unknown'
      this.#writeProblemKinds.add(`write:${code}`)
      this.#fail(`write:${code}`, `cannot write ${this.#options.metricsFile} (${code}); serving the last good file, retrying next interval`)
      return { ok: false, written: false }
    }
    this.#clearWriteProblems()
    if (logRead) this.#lastSuccessEpochSeconds = startedAt / 1000
    return { ok: logRead, written: true }
  }

  async #readJobLog(): Promise<boolean> {
    try {
      await this.#reader.readNew()
      this.#problems.clear('job-log')
      return true
    } catch (error) {
      const code = errnoCode(error) ?? 'unknown'
      this.#fail('job-log', `cannot read job log ${this.#options.jobsLog} (${code}); counts are kept, retrying next interval`)
      return false
    }
  }

  #fail(kind: string, message: string): void {
    this.#errorsTotal++
    this.#problems.once(kind, message)
  }

  /** Kinds of write failure seen since the last good write: logged again if they recur after it. */
  readonly #writeProblemKinds = new Set<string>()

  #clearWriteProblems(): void {
    for (const kind of this.#writeProblemKinds) this.#problems.clear(kind)
    this.#writeProblemKinds.clear()
  }
}

// Follows the file the runner's stdout is copied into (the entrypoint's `tee -a`) and turns each
// `Job ... completed with result: ...` line into one finish line in the job log, exactly once.
//
// The runner never writes into this process: `tee` copies its output to the container log and to
// the file, so a slow, crashed or restarted exporter cannot block, lose or kill anything. The
// file is durable, and every finish line carries the output offset it covers (job-lines.ts), so
// a restarted follower resumes just after the last recorded result.

import { constants } from 'node:fs'
import { appendFile, open, type FileHandle } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import split2 from 'split2'
import { errnoCode } from '../errors.js'
import { createOnceLog, type Log } from '../log.js'
import {
  finishFor,
  formatFinishLine,
  formatRepeatedStartedLine,
  initialFollowState,
  parseResumePoint,
  startedJobs,
  type FollowState,
  type ResumePoint,
} from './job-lines.js'
import { parseRunnerLine } from './runner-output.js'

export interface RunnerOutputFollowerOptions {
  /** The file the runner's stdout is appended to (RUNNER_OUTPUT_LOG). */
  runnerOutput: string
  /** The job log the hooks and this follower append to, and the collector reads (JOBS_LOG). */
  jobsLog: string
  log: Log
  /** Stops the follower; the returned promise resolves once it has. */
  signal: AbortSignal
  /** How often to look for new runner output. */
  pollMs?: number
  /** Called after each finish line is appended (e.g. to collect at once instead of at the next interval). */
  onJobRecorded?: (line: string) => void
}

const DEFAULT_POLL_MS = 1000
// Runner job lines are short; a longer line is not one of them and is skipped as it streams by.
const MAX_LINE_BYTES = 8192
const READ_CHUNK_BYTES = 64 * 1024
// The started line of the job being finished is among the last few job-log lines.
const JOB_LOG_TAIL_BYTES = 64 * 1024
const NEWLINE = 0x0a
// split2 supports skipOverflow; @types/split2 does not list it, so the options are not a literal.
const SKIP_LONG_LINES = { maxLength: MAX_LINE_BYTES, skipOverflow: true }

/** Runs until `signal` aborts. Never rejects: problems are logged (once per kind) and retried. */
export async function followRunnerOutput(options: RunnerOutputFollowerOptions): Promise<void> {
  const follower = new RunnerOutputFollower(options)
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS
  while (!options.signal.aborted) {
    await follower.pass()
    try {
      await sleep(pollMs, undefined, { signal: options.signal })
    } catch {
      // Aborted: the loop condition ends it.
    }
  }
}

export class RunnerOutputFollower {
  readonly #options: RunnerOutputFollowerOptions
  readonly #problems: ReturnType<typeof createOnceLog>
  #state: FollowState = initialFollowState()
  #resumed = false
  #offset = 0
  #skippingLongLine = false
  #file: { dev: number; ino: number } | undefined

  constructor(options: RunnerOutputFollowerOptions) {
    this.#options = options
    this.#problems = createOnceLog(options.log)
  }

  /** Offset in the runner output up to which every line has been handled. */
  get offset(): number {
    return this.#offset
  }

  /**
   * Picks up where the last finish line in the job log says a previous follower stopped. Nothing
   * is recorded before this succeeds: starting from a guess could record a result twice.
   */
  async #resume(): Promise<boolean> {
    const { jobsLog, runnerOutput, log } = this.#options
    let point: ResumePoint | undefined
    try {
      point = await lastResumePoint(jobsLog)
    } catch (error) {
      this.#problem('resume', `cannot read the job log ${jobsLog} (${describe(error)}); waiting for it before reading the runner output`)
      return false
    }
    this.#resumed = true
    if (point === undefined) return true
    if (await endsWithResultLine(runnerOutput, point)) {
      this.#offset = point.outputOffset
      this.#state = initialFollowState(point)
    } else {
      log(`the runner output ${runnerOutput} is not the file the job log's last result came from; reading it from the start`)
    }
    return true
  }

  /** Handles every complete line appended since the last pass. */
  async pass(): Promise<void> {
    if (!this.#resumed && !(await this.#resume())) return
    let handle: FileHandle
    try {
      // O_NONBLOCK: a FIFO put in the file's place must not block a thread-pool thread forever.
      handle = await open(this.#options.runnerOutput, constants.O_RDONLY | constants.O_NONBLOCK)
    } catch (error) {
      // Missing until tee creates it; a file that comes back is a new one.
      if (errnoCode(error) === 'ENOENT') this.#restartFromTheTop()
      else this.#problem('read', `cannot read the runner output ${this.#options.runnerOutput} (${describe(error)}); retrying`)
      return
    }
    try {
      await this.#readNew(handle)
      this.#problems.clear('read')
    } catch (error) {
      this.#problem('read', `cannot read the runner output ${this.#options.runnerOutput} (${describe(error)}); retrying`)
    } finally {
      await handle.close()
    }
  }

  async #readNew(handle: FileHandle): Promise<void> {
    const stats = await handle.stat()
    const replaced = this.#file !== undefined && (stats.dev !== this.#file.dev || stats.ino !== this.#file.ino)
    if (replaced || stats.size < this.#offset) {
      this.#options.log(`the runner output ${this.#options.runnerOutput} was replaced or truncated; reading it from the start`)
      this.#restartFromTheTop()
    }
    this.#file = { dev: stats.dev, ino: stats.ino }

    const buffer = Buffer.alloc(READ_CHUNK_BYTES)
    while (this.#offset < stats.size) {
      const chunkStart = this.#offset
      const { bytesRead } = await handle.read(buffer, 0, Math.min(READ_CHUNK_BYTES, stats.size - chunkStart), chunkStart)
      const chunk = buffer.subarray(0, bytesRead)
      let start = 0
      for (let newline = chunk.indexOf(NEWLINE); newline !== -1; newline = chunk.indexOf(NEWLINE, start)) {
        if (this.#skippingLongLine) this.#skippingLongLine = false
        else if (!(await this.#handleLine(chunk.toString('utf8', start, newline), chunkStart + newline + 1))) return
        start = newline + 1
        this.#offset = chunkStart + start
      }
      if (start === 0 && chunk.length > MAX_LINE_BYTES) {
        // No line end within the limit: not a runner job line. Drop it as it streams by.
        this.#skippingLongLine = true
        this.#offset = chunkStart + chunk.length
      } else if (start < chunk.length && chunkStart + chunk.length >= stats.size) {
        return // an unfinished last line waits for the next pass
      }
    }
  }

  /** False when the finish line could not be written: the line is handled again next pass. */
  async #handleLine(line: string, lineEnd: number): Promise<boolean> {
    const parsed = parseRunnerLine(line)
    if (parsed === undefined) return true
    if (parsed.kind === 'running') {
      this.#state = { ...this.#state, running: { epochSeconds: parsed.epochSeconds, jobName: parsed.jobName } }
      return true
    }
    const { jobsLog } = this.#options
    let tail: string
    try {
      tail = await readTail(jobsLog, JOB_LOG_TAIL_BYTES)
    } catch (error) {
      this.#problem('append', `cannot read the job log ${jobsLog} (${describe(error)}); will record the result later`)
      return false
    }
    const { finish, state, stillRunning } = finishFor(parsed, lineEnd, this.#state, startedJobs(tail))
    const text = formatFinishLine(finish) + (stillRunning === undefined ? '' : formatRepeatedStartedLine(stillRunning))
    try {
      // One write with O_APPEND: hooks append to the same file at the same time.
      await appendFile(jobsLog, text)
    } catch (error) {
      this.#problem('append', `cannot append to the job log ${jobsLog} (${describe(error)}); will record the result later`)
      return false
    }
    this.#problems.clear('append')
    this.#state = state
    try {
      this.#options.onJobRecorded?.(text)
    } catch (error) {
      this.#options.log(`bug: onJobRecorded threw ${describe(error)}; the job is recorded all the same`)
    }
    return true
  }

  #restartFromTheTop(): void {
    this.#offset = 0
    this.#skippingLongLine = false
    this.#state = initialFollowState()
    this.#file = undefined
  }

  #problem(kind: string, message: string): void {
    this.#problems.once(kind, message)
  }
}

/** The last resume point in the job log, read as a stream (the log may be large). */
export async function lastResumePoint(jobsLog: string): Promise<ResumePoint | undefined> {
  let handle: FileHandle
  try {
    handle = await open(jobsLog, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined
    throw error
  }
  let point: ResumePoint | undefined
  try {
    await pipeline(
      handle.createReadStream({ autoClose: false }),
      split2('\n', SKIP_LONG_LINES),
      new Writable({
        objectMode: true,
        write(line: string, _encoding, callback) {
          point = parseResumePoint(line) ?? point
          callback()
        },
      }),
    )
  } finally {
    await handle.close()
  }
  return point
}

/**
 * True when the bytes just before the resume offset are the runner result line that the resume
 * point recorded: then this is the same output file, and resuming there skips nothing.
 */
export async function endsWithResultLine(runnerOutput: string, point: ResumePoint): Promise<boolean> {
  let handle: FileHandle
  try {
    handle = await open(runnerOutput, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch {
    return false
  }
  try {
    const start = Math.max(0, point.outputOffset - MAX_LINE_BYTES - 1)
    const buffer = Buffer.alloc(point.outputOffset - start)
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, start)
    if (bytesRead !== buffer.length || buffer[bytesRead - 1] !== NEWLINE) return false
    const lineStart = buffer.lastIndexOf(NEWLINE, bytesRead - 2) + 1
    const parsed = parseRunnerLine(buffer.toString('utf8', lineStart, bytesRead - 1))
    return parsed?.kind === 'completed' && parsed.epochSeconds === point.epochSeconds
  } finally {
    await handle.close()
  }
}

/** The last `bytes` of a file from a line start (the first, partial line dropped); '' if missing. */
export async function readTail(path: string, bytes: number): Promise<string> {
  let handle: FileHandle
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return ''
    throw error
  }
  try {
    const { size } = await handle.stat()
    const start = Math.max(0, size - bytes)
    const buffer = Buffer.alloc(size - start)
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, start)
    const text = buffer.toString('utf8', 0, bytesRead)
    return start === 0 ? text : text.slice(text.indexOf('\n') + 1)
  } finally {
    await handle.close()
  }
}

function describe(error: unknown): string {
  return errnoCode(error) ?? (error as Error).message
}

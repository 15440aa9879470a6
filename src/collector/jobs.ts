// A job-log line -> a job event; job events -> the counts the metrics are made of. Pure: the
// reader (job-log.ts) feeds it lines, the renderer (exposition.ts) reads the counts.
//
// Line grammar: `epoch|status|duration|job_id`, seconds with optional decimals, job_id optional,
// extra `|` fields ignored, a trailing `\r` tolerated.

export const FINISHED_STATUSES = ['success', 'failure', 'cancelled', 'skipped', 'unknown'] as const
export type FinishedStatus = (typeof FINISHED_STATUSES)[number]
export type JobStatus = 'started' | FinishedStatus

export interface JobEvent {
  epochSeconds: number
  status: JobStatus
  durationSeconds: number
  jobId: string
}

export type ParsedLine = { kind: 'event'; event: JobEvent } | { kind: 'blank' } | { kind: 'invalid' }

/** Upper bounds (inclusive, Prometheus `le`) of the job duration histogram, in seconds. */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200])

export interface JobCounts {
  jobs: Record<FinishedStatus, number>
  /** Non-cumulative count per bucket of DURATION_BUCKETS, plus a last one for "above 7200". */
  bucketCounts: number[]
  durationSum: number
  durationCount: number
  /** True while the last job event seen is `started`. */
  busy: boolean
  /** Epoch of the latest finish line, in seconds. */
  lastCompletedEpochSeconds: number | undefined
  invalidLines: number
}

// The words runners, hooks and the old bash loop write, lower-cased.
const STATUS_WORDS: ReadonlyMap<string, JobStatus> = new Map<string, JobStatus>([
  ['started', 'started'],
  ['success', 'success'],
  ['completed', 'success'],
  ['succeeded', 'success'],
  ['succeededwithissues', 'success'],
  ['failure', 'failure'],
  ['failed', 'failure'],
  ['cancelled', 'cancelled'],
  ['canceled', 'cancelled'],
  ['abandoned', 'cancelled'],
  ['skipped', 'skipped'],
  ['unknown', 'unknown'],
])

const BLANK: ParsedLine = Object.freeze({ kind: 'blank' })
const INVALID: ParsedLine = Object.freeze({ kind: 'invalid' })

const CR = 0x0d
const DOT = 0x2e
const DIGIT_0 = 0x30
const DIGIT_9 = 0x39

export function parseJobLine(line: string): ParsedLine {
  let end = line.length
  if (line.charCodeAt(end - 1) === CR) end--
  if (end === 0) return BLANK

  // A `|` found is always before `end`: what `end` leaves out is at most the final `\r`.
  const statusStart = line.indexOf('|') + 1
  if (statusStart === 0) return isBlank(line, end) ? BLANK : INVALID
  const durationStart = line.indexOf('|', statusStart) + 1
  if (durationStart === 0) return INVALID
  let durationEnd = line.indexOf('|', durationStart)
  let jobId = ''
  if (durationEnd === -1) {
    durationEnd = end
  } else {
    const jobIdEnd = line.indexOf('|', durationEnd + 1)
    jobId = line.slice(durationEnd + 1, jobIdEnd === -1 ? end : jobIdEnd)
  }

  const status = statusWord(line.slice(statusStart, durationStart - 1))
  const epochSeconds = parseSeconds(line, 0, statusStart - 1)
  const durationSeconds = parseSeconds(line, durationStart, durationEnd)
  if (status === undefined || epochSeconds === undefined || durationSeconds === undefined) return INVALID
  return { kind: 'event', event: { epochSeconds, status, durationSeconds, jobId } }
}

function isBlank(line: string, end: number): boolean {
  return line.slice(0, end).trim() === ''
}

function statusWord(word: string): JobStatus | undefined {
  const exact = STATUS_WORDS.get(word)
  if (exact !== undefined) return exact
  // Only ASCII letters fold: Unicode case rules would let e.g. the Kelvin sign stand for `k`.
  for (let i = 0; i < word.length; i++) if (word.charCodeAt(i) > 0x7f) return undefined
  return STATUS_WORDS.get(word.toLowerCase())
}

/** Non-negative decimal seconds (`12`, `12.5`) in line[start, end); anything else is undefined. */
function parseSeconds(line: string, start: number, end: number): number | undefined {
  let sawDot = false
  let digitsBefore = 0
  let digitsAfter = 0
  let integer = 0
  for (let i = start; i < end; i++) {
    const code = line.charCodeAt(i)
    if (code >= DIGIT_0 && code <= DIGIT_9) {
      if (sawDot) digitsAfter++
      else {
        digitsBefore++
        integer = integer * 10 + (code - DIGIT_0)
      }
    } else if (code === DOT && !sawDot) {
      sawDot = true
    } else {
      return undefined
    }
  }
  if (digitsBefore === 0 || (sawDot && digitsAfter === 0)) return undefined
  // Whole seconds of up to 15 digits are exact as computed; the rest goes through Number(),
  // which rounds decimals correctly. (This runs twice per log line: keep it allocation-free.)
  if (!sawDot && digitsBefore <= 15) return integer
  const value = Number(line.slice(start, end))
  // Hundreds of digits overflow to Infinity, which no clock or stopwatch produces.
  return Number.isFinite(value) ? value : undefined
}

export function emptyCounts(): JobCounts {
  return {
    jobs: { success: 0, failure: 0, cancelled: 0, skipped: 0, unknown: 0 },
    bucketCounts: new Array<number>(DURATION_BUCKETS.length + 1).fill(0),
    durationSum: 0,
    durationCount: 0,
    busy: false,
    lastCompletedEpochSeconds: undefined,
    invalidLines: 0,
  }
}

/** Adds one event to the counts (mutates them: this runs once per log line). */
export function applyEvent(counts: JobCounts, event: JobEvent): void {
  if (event.status === 'started') {
    counts.busy = true
    return
  }
  counts.busy = false
  counts.jobs[event.status]++
  counts.bucketCounts[bucketIndex(event.durationSeconds)]++
  counts.durationSum += event.durationSeconds
  counts.durationCount++
  if (counts.lastCompletedEpochSeconds === undefined || event.epochSeconds > counts.lastCompletedEpochSeconds) {
    counts.lastCompletedEpochSeconds = event.epochSeconds
  }
}

function bucketIndex(durationSeconds: number): number {
  let index = 0
  while (index < DURATION_BUCKETS.length && durationSeconds > DURATION_BUCKETS[index]) index++
  return index
}

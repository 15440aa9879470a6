// The two lines the GitHub Actions runner prints on stdout about each job -> typed events. Pure.
//
// actions/runner (src/Runner.Listener/JobDispatcher.cs) writes them with `{DateTime.UtcNow:u}`:
//   2025-01-15 10:30:00Z: Running job: build (ubuntu, 20)
//   2025-01-15 10:31:12Z: Job build (ubuntu, 20) completed with result: Succeeded
// It is the one place the job's true result is visible without a GitHub token.

import type { FinishedStatus } from '../collector/jobs.js'

export type RunnerJobLine =
  | { kind: 'running'; epochSeconds: number; jobName: string }
  | { kind: 'completed'; epochSeconds: number; jobName: string; result: string; status: FinishedStatus }

// TaskResult names, lower-cased. A name missing here is still a finished job, but never a success.
const RESULT_STATUS: ReadonlyMap<string, FinishedStatus> = new Map<string, FinishedStatus>([
  ['succeeded', 'success'],
  ['succeededwithissues', 'success'],
  ['failed', 'failure'],
  ['canceled', 'cancelled'],
  ['abandoned', 'cancelled'],
  ['skipped', 'skipped'],
])

const STAMP = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})Z: /
const RUNNING = 'Running job: '
const JOB = 'Job '
const COMPLETED = ' completed with result: '
const RESULT_WORD = /^[A-Za-z]+$/

/** The job status a runner result name stands for; unknown names map to `unknown`. */
export function statusForResult(result: string): FinishedStatus {
  return RESULT_STATUS.get(result.toLowerCase()) ?? 'unknown'
}

/** A line of runner output (without its `\n`; a trailing `\r` is ignored) -> a job line, or undefined. */
export function parseRunnerLine(line: string): RunnerJobLine | undefined {
  const text = line.endsWith('\r') ? line.slice(0, -1) : line
  const stamp = STAMP.exec(text)
  if (stamp === null) return undefined
  const epochSeconds = utcSeconds(stamp)
  if (epochSeconds === undefined) return undefined
  const rest = text.slice(stamp[0].length)

  if (rest.startsWith(RUNNING)) {
    const jobName = rest.slice(RUNNING.length)
    return jobName === '' ? undefined : { kind: 'running', epochSeconds, jobName }
  }
  if (!rest.startsWith(JOB)) return undefined
  // The last occurrence: a job may be named anything, including "x completed with result: y".
  const marker = rest.lastIndexOf(COMPLETED)
  if (marker <= JOB.length) return undefined
  const result = rest.slice(marker + COMPLETED.length)
  if (!RESULT_WORD.test(result)) return undefined
  return { kind: 'completed', epochSeconds, jobName: rest.slice(JOB.length, marker), result, status: statusForResult(result) }
}

function utcSeconds(stamp: RegExpExecArray): number | undefined {
  const [year, month, day, hour, minute, second] = stamp.slice(1).map(Number) as [number, number, number, number, number, number]
  const ms = Date.UTC(year, month - 1, day, hour, minute, second)
  const date = new Date(ms)
  // Date.UTC rolls 2025-02-30 over to March; a stamp that does not round-trip is not a runner's.
  const valid =
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second
  return valid ? ms / 1000 : undefined
}

// The job-log lines the runner-output follower writes and reads back. Pure.
//
// A finish line is the job log's own format plus fields the collector ignores:
//   1736937072|failure|72|octo/app/123/1/test|runner-output@5120|started@1736937000.25
// `runner-output@N` is the byte offset just past the runner's result line; `started@E` the
// epoch of the last started line a result has taken. Written in the same single append as the
// finish line, they make the job log itself record how far the runner output has been turned
// into finish lines: a restarted follower resumes exactly there, so no result is recorded twice
// and none is skipped, without a second state file that could disagree.

import type { FinishedStatus } from '../collector/jobs.js'
import { parseJobLine } from '../collector/jobs.js'
import type { RunnerJobLine } from './runner-output.js'

const MARKER = 'runner-output@'
const STARTED_MARKER = 'started@'
const MAX_JOB_ID_LENGTH = 512

export interface FinishLine {
  epochSeconds: number
  status: FinishedStatus
  durationSeconds: number
  jobId: string
  /** Offset in the runner output just past the result line this finish line records. */
  outputOffset: number
  /** The epoch of the last started line taken by a result, this one or an earlier one. */
  lastPairedStartedEpoch: number | undefined
}

export interface StartedJob {
  epochSeconds: number
  jobId: string
}

/** Where a previous follower stopped: the epoch and output offset of its last finish line. */
export interface ResumePoint {
  epochSeconds: number
  outputOffset: number
  lastPairedStartedEpoch: number | undefined
}

export function formatFinishLine(finish: FinishLine): string {
  const started = finish.lastPairedStartedEpoch === undefined ? '' : `|${STARTED_MARKER}${finish.lastPairedStartedEpoch}`
  return `${finish.epochSeconds}|${finish.status}|${formatSeconds(finish.durationSeconds)}|${finish.jobId}|${MARKER}${finish.outputOffset}${started}\n`
}

/** Decimal seconds with at most millisecond precision and never an exponent (the log grammar has none). */
export function formatSeconds(seconds: number): string {
  return seconds.toFixed(3).replace(/\.?0+$/, '')
}

/** A job name as a job-log field: no `|` or line breaks, bounded length. */
export function jobIdFromName(name: string): string {
  return name.replace(/[|\u0000-\u001f\u007f]/g, '_').slice(0, MAX_JOB_ID_LENGTH)
}

/** The resume point a finish line of ours carries, or undefined for any other line. */
export function parseResumePoint(line: string): ResumePoint | undefined {
  const parsed = parseJobLine(line)
  if (parsed.kind !== 'event' || parsed.event.status === 'started') return undefined
  const fields = line.replace(/\r$/, '').split('|')
  const marker = fields[4]
  if (marker === undefined || !marker.startsWith(MARKER)) return undefined
  const digits = marker.slice(MARKER.length)
  if (!/^\d{1,15}$/.test(digits)) return undefined
  const started = fields[5]?.startsWith(STARTED_MARKER) ? fields[5].slice(STARTED_MARKER.length) : ''
  return {
    epochSeconds: parsed.event.epochSeconds,
    outputOffset: Number(digits),
    lastPairedStartedEpoch: /^\d{1,15}(\.\d{1,9})?$/.test(started) ? Number(started) : undefined,
  }
}

/** The `started` events in some job-log text, in file order (the hooks write these). */
export function startedJobs(text: string): StartedJob[] {
  const started: StartedJob[] = []
  for (const line of text.split('\n')) {
    const parsed = parseJobLine(line)
    if (parsed.kind === 'event' && parsed.event.status === 'started') {
      started.push({ epochSeconds: parsed.event.epochSeconds, jobId: parsed.event.jobId })
    }
  }
  return started
}

/** What the follower remembers between runner lines. */
export interface FollowState {
  /** The last `Running job` line not yet followed by its result. */
  running: { epochSeconds: number; jobName: string } | undefined
  previousCompletedEpoch: number | undefined
  /** The started line paired with the previous result, so the next result cannot take it again. */
  lastPairedStartedEpoch: number | undefined
}

export function initialFollowState(resume?: ResumePoint): FollowState {
  return { running: undefined, previousCompletedEpoch: resume?.epochSeconds, lastPairedStartedEpoch: resume?.lastPairedStartedEpoch }
}

/**
 * The finish line for a runner result, and the state after it. The job's identity comes from
 * the started line the job-started hook wrote during this job: the runner runs one job at a
 * time, so it is the first one after the job's `Running job` stamp (and after the one the
 * previous result took) and before its result stamp plus one second (stamps are whole seconds,
 * truncated). The duration is the runner's own:
 * result stamp minus `Running job` stamp, so a replay after a restart gives the same figure.
 *
 * `stillRunning` is the started line of a later job that is already in the log when this
 * result is recorded (the follower polls; the next job may start first). Appended after it, the
 * finish line would make the log say "idle" while that job runs, so the follower repeats it.
 */
export function finishFor(
  completed: Extract<RunnerJobLine, { kind: 'completed' }>,
  outputOffset: number,
  state: FollowState,
  started: readonly StartedJob[],
): { finish: FinishLine; state: FollowState; stillRunning: StartedJob | undefined } {
  const running = state.running?.jobName === completed.jobName ? state.running : undefined
  const from = running?.epochSeconds ?? state.previousCompletedEpoch ?? -Infinity
  const to = completed.epochSeconds + 1
  const unseen = (job: StartedJob): boolean => state.lastPairedStartedEpoch === undefined || job.epochSeconds > state.lastPairedStartedEpoch
  const pairedIndex = started.findIndex((job) => job.epochSeconds >= from && job.epochSeconds < to && unseen(job))
  const paired = started[pairedIndex]
  // Hooks that ran after this job's own (not its repetitions): later jobs. Without one of its
  // own, those that ran after its result was stamped.
  const later =
    paired !== undefined
      ? started.slice(pairedIndex + 1).filter((job) => job.epochSeconds > paired.epochSeconds)
      : started.filter((job) => job.epochSeconds >= completed.epochSeconds && unseen(job))
  const startEpoch = running?.epochSeconds ?? paired?.epochSeconds
  const durationSeconds = startEpoch === undefined ? 0 : Math.max(0, completed.epochSeconds - startEpoch)
  const lastPairedStartedEpoch = paired?.epochSeconds ?? state.lastPairedStartedEpoch
  return {
    finish: {
      epochSeconds: completed.epochSeconds,
      status: completed.status,
      durationSeconds,
      jobId: paired?.jobId || jobIdFromName(completed.jobName),
      outputOffset,
      lastPairedStartedEpoch,
    },
    state: { running: undefined, previousCompletedEpoch: completed.epochSeconds, lastPairedStartedEpoch },
    stillRunning: later.at(-1),
  }
}

/** A started line repeated by the follower (see finishFor); the last field is for people. */
export function formatRepeatedStartedLine(job: StartedJob): string {
  return `${job.epochSeconds}|started|0|${job.jobId}|repeated\n`
}

import t from 'tap'
import { parseJobLine } from '../src/collector/jobs.js'
import {
  finishFor,
  formatFinishLine,
  formatRepeatedStartedLine,
  formatSeconds,
  initialFollowState,
  jobIdFromName,
  parseResumePoint,
  startedJobs,
  type FollowState,
} from '../src/runner/job-lines.js'
import { parseRunnerLine, type RunnerJobLine } from '../src/runner/runner-output.js'

type Completed = Extract<RunnerJobLine, { kind: 'completed' }>

function completed(line: string): Completed {
  const parsed = parseRunnerLine(line)
  if (parsed?.kind !== 'completed') throw new Error(`not a completed line: ${line}`)
  return parsed
}

const T0 = Date.UTC(2025, 0, 15, 10, 30, 0) / 1000

t.test('a finish line is a valid job-log line that carries its resume point', async (t) => {
  const line = formatFinishLine({
    epochSeconds: T0 + 72,
    status: 'failure',
    durationSeconds: 72,
    jobId: 'octo/app/1/1/test',
    outputOffset: 5120,
    lastPairedStartedEpoch: T0 + 0.25,
  })
  t.equal(line, `${T0 + 72}|failure|72|octo/app/1/1/test|runner-output@5120|started@${T0 + 0.25}\n`)
  t.same(parseJobLine(line.slice(0, -1)), {
    kind: 'event',
    event: { epochSeconds: T0 + 72, status: 'failure', durationSeconds: 72, jobId: 'octo/app/1/1/test' },
  })
  t.same(parseResumePoint(line.slice(0, -1)), { epochSeconds: T0 + 72, outputOffset: 5120, lastPairedStartedEpoch: T0 + 0.25 })
  const first = formatFinishLine({ epochSeconds: T0, status: 'success', durationSeconds: 1, jobId: '', outputOffset: 7, lastPairedStartedEpoch: undefined })
  t.equal(first, `${T0}|success|1||runner-output@7\n`, 'no result has taken a started line yet')
  t.same(
    parseResumePoint(first.replace('\n', '\r')),
    { epochSeconds: T0, outputOffset: 7, lastPairedStartedEpoch: undefined },
    'CRLF and an empty job id',
  )
  t.same(parseResumePoint(`${T0}|success|1|x|runner-output@7|started@soon`), { epochSeconds: T0, outputOffset: 7, lastPairedStartedEpoch: undefined })
  t.same(parseResumePoint(`${T0}|success|1|x|runner-output@7|other`), { epochSeconds: T0, outputOffset: 7, lastPairedStartedEpoch: undefined })
})

t.test('only our finish lines are resume points', async (t) => {
  t.equal(parseResumePoint(`${T0}|success|1|job`), undefined, 'a hook or netcat-era line')
  t.equal(parseResumePoint(`${T0}|started|0|job|runner-output@7`), undefined, 'a started line')
  t.equal(parseResumePoint(`${T0}|success|1|job|other@7`), undefined)
  t.equal(parseResumePoint(`${T0}|success|1|job|runner-output@`), undefined)
  t.equal(parseResumePoint(`${T0}|success|1|job|runner-output@-1`), undefined)
  t.equal(parseResumePoint(`${T0}|success|1|job|runner-output@1234567890123456`), undefined, 'absurdly large')
  t.equal(parseResumePoint(`x|success|1|job|runner-output@7`), undefined, 'an invalid line')
  t.equal(parseResumePoint(''), undefined)
})

t.test('seconds are written without exponents and with at most millisecond precision', async (t) => {
  t.equal(formatSeconds(42), '42')
  t.equal(formatSeconds(0), '0')
  t.equal(formatSeconds(40), '40')
  t.equal(formatSeconds(41.8765), '41.877')
  t.equal(formatSeconds(0.5), '0.5')
  t.equal(formatSeconds(1e-7), '0')
})

t.test('a job name becomes a safe job id', async (t) => {
  t.equal(jobIdFromName('test (ubuntu, 20)'), 'test (ubuntu, 20)')
  t.equal(jobIdFromName('a|b\r\nc\u0000d\u007f'), 'a_b__c_d_')
  t.equal(jobIdFromName('x'.repeat(600)).length, 512)
})

t.test('started lines are read from job-log text in order', async (t) => {
  const text = [
    `${T0}|started|0|a`,
    `${T0 + 1}|success|1|a|runner-output@9`,
    'garbage',
    '',
    `${T0 + 2.5}|STARTED|0|b\r`,
    `${T0 + 3}|started|0|`,
  ].join('\n')
  t.same(startedJobs(text), [
    { epochSeconds: T0, jobId: 'a' },
    { epochSeconds: T0 + 2.5, jobId: 'b' },
    { epochSeconds: T0 + 3, jobId: '' },
  ])
})

t.test('a result takes the identity of the started line written during its job', async (t) => {
  const running: FollowState = { ...initialFollowState(), running: { epochSeconds: T0, jobName: 'test' } }
  const started = [
    { epochSeconds: T0 - 100.5, jobId: 'previous' },
    { epochSeconds: T0 + 0.25, jobId: 'octo/app/1/1/test' },
  ]
  const { finish, state } = finishFor(completed('2025-01-15 10:31:12Z: Job test completed with result: Failed'), 900, running, started)
  t.same(finish, {
    epochSeconds: T0 + 72,
    status: 'failure',
    durationSeconds: 72,
    jobId: 'octo/app/1/1/test',
    outputOffset: 900,
    lastPairedStartedEpoch: T0 + 0.25,
  })
  t.same(state, { running: undefined, previousCompletedEpoch: T0 + 72, lastPairedStartedEpoch: T0 + 0.25 })
})

t.test('a later job that started before this result is recorded is still running', async (t) => {
  const running: FollowState = { ...initialFollowState(), running: { epochSeconds: T0, jobName: 'a' } }
  const line = completed('2025-01-15 10:30:10Z: Job a completed with result: Succeeded')
  const paired = finishFor(line, 1, running, [
    { epochSeconds: T0 + 1, jobId: 'a' },
    { epochSeconds: T0 + 10.5, jobId: 'b' },
    { epochSeconds: T0 + 30, jobId: 'c' },
  ])
  t.match(paired.finish, { jobId: 'a' })
  t.same(paired.stillRunning, { epochSeconds: T0 + 30, jobId: 'c' }, 'the latest of the later ones')
  t.equal(finishFor(line, 1, running, [{ epochSeconds: T0 + 1, jobId: 'a' }]).stillRunning, undefined)
  const repeated = finishFor(line, 1, running, [
    { epochSeconds: T0 + 1, jobId: 'a' },
    { epochSeconds: T0 + 1, jobId: 'a' },
  ])
  t.match(repeated, { finish: { jobId: 'a' }, stillRunning: undefined }, 'a repetition of its own started line is not a later job')

  const unpaired = finishFor(line, 1, { ...running, lastPairedStartedEpoch: T0 - 50 }, [
    { epochSeconds: T0 - 50, jobId: 'earlier' },
    { epochSeconds: T0 + 10.5, jobId: 'b' },
  ])
  t.match(unpaired.finish, { jobId: 'b' }, 'b started in the second a was stamped: without a hook of its own, a takes it')
  const noHook = finishFor(completed('2025-01-15 10:30:10Z: Job a completed with result: Canceled'), 1, { ...running, lastPairedStartedEpoch: T0 + 20 }, [
    { epochSeconds: T0 - 50, jobId: 'earlier' },
    { epochSeconds: T0 + 20, jobId: 'paired before' },
    { epochSeconds: T0 + 25, jobId: 'b' },
  ])
  t.match(noHook.finish, { jobId: 'a' })
  t.same(noHook.stillRunning, { epochSeconds: T0 + 25, jobId: 'b' }, 'without a hook of its own, later hooks are those after its stamp')
  t.equal(formatRepeatedStartedLine({ epochSeconds: T0 + 25.5, jobId: 'b' }), `${T0 + 25.5}|started|0|b|repeated\n`)
  t.same(parseJobLine(formatRepeatedStartedLine({ epochSeconds: T0 + 25.5, jobId: 'b' }).slice(0, -1)), {
    kind: 'event',
    event: { epochSeconds: T0 + 25.5, status: 'started', durationSeconds: 0, jobId: 'b' },
  })
})

t.test('the hook may run in the last, truncated second of the result stamp', async (t) => {
  const running: FollowState = { ...initialFollowState(), running: { epochSeconds: T0, jobName: 'quick' } }
  const { finish } = finishFor(completed('2025-01-15 10:30:00Z: Job quick completed with result: Succeeded'), 1, running, [
    { epochSeconds: T0 + 0.9, jobId: 'q' },
    { epochSeconds: T0 + 1, jobId: 'too late' },
  ])
  t.match(finish, { jobId: 'q', durationSeconds: 0 })
})

t.test('a started line is never paired twice, and one before the job is not this job', async (t) => {
  const state: FollowState = { running: { epochSeconds: T0 + 60, jobName: 'b' }, previousCompletedEpoch: T0 + 50, lastPairedStartedEpoch: T0 + 10 }
  const early = finishFor(completed('2025-01-15 10:31:30Z: Job b completed with result: Canceled'), 2, state, [
    { epochSeconds: T0 + 10, jobId: 'a' },
    { epochSeconds: T0 + 55, jobId: 'between jobs' },
  ])
  t.match(early.finish, { jobId: 'b', durationSeconds: 30, status: 'cancelled' }, 'no hook ran: the name is the id')
  t.equal(early.state.lastPairedStartedEpoch, T0 + 10, 'nothing newly paired')

  const reused = finishFor(completed('2025-01-15 10:31:30Z: Job b completed with result: Canceled'), 2, { ...state, lastPairedStartedEpoch: T0 + 61 }, [
    { epochSeconds: T0 + 61, jobId: 'a' },
  ])
  t.match(reused.finish, { jobId: 'b' })
})

t.test('without its Running line, the previous result bounds the search and the hook gives the start', async (t) => {
  const state: FollowState = { running: undefined, previousCompletedEpoch: T0, lastPairedStartedEpoch: undefined }
  const { finish } = finishFor(completed('2025-01-15 10:31:00Z: Job c completed with result: Succeeded'), 3, state, [
    { epochSeconds: T0 - 5, jobId: 'older' },
    { epochSeconds: T0 + 20.5, jobId: 'c-id' },
  ])
  t.match(finish, { jobId: 'c-id', durationSeconds: 39.5 })

  const mismatched: FollowState = { running: { epochSeconds: T0 + 10, jobName: 'other' }, previousCompletedEpoch: undefined, lastPairedStartedEpoch: undefined }
  const alone = finishFor(completed('2025-01-15 10:31:00Z: Job c completed with result: Succeeded'), 3, mismatched, [])
  t.match(alone.finish, { jobId: 'c', durationSeconds: 0 }, 'a Running line for another job is not this job\'s start')

  const clamped = finishFor(completed('2025-01-15 10:30:00Z: Job c completed with result: Succeeded'), 3, initialFollowState(), [
    { epochSeconds: T0 + 0.5, jobId: '' },
  ])
  t.match(clamped.finish, { jobId: 'c', durationSeconds: 0 }, 'an empty hook id falls back to the name; no negative durations')
})

t.test('the initial state remembers a resume point', async (t) => {
  t.same(initialFollowState({ epochSeconds: T0, outputOffset: 10, lastPairedStartedEpoch: T0 - 3 }), {
    running: undefined,
    previousCompletedEpoch: T0,
    lastPairedStartedEpoch: T0 - 3,
  })
})

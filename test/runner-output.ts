import t from 'tap'
import { parseRunnerLine, statusForResult } from '../src/runner/runner-output.js'

const EPOCH = Date.UTC(2025, 0, 15, 10, 30, 0) / 1000

t.test('a Running job line', async (t) => {
  t.same(parseRunnerLine('2025-01-15 10:30:00Z: Running job: build'), { kind: 'running', epochSeconds: EPOCH, jobName: 'build' })
  t.same(parseRunnerLine('2025-01-15 10:30:00Z: Running job: test (ubuntu, 20): part 1\r'), {
    kind: 'running',
    epochSeconds: EPOCH,
    jobName: 'test (ubuntu, 20): part 1',
  })
  t.equal(parseRunnerLine('2025-01-15 10:30:00Z: Running job: '), undefined, 'a job has a name')
})

t.test('a completed line carries the result and its status', async (t) => {
  t.same(parseRunnerLine('2025-01-15 10:31:12Z: Job build completed with result: Succeeded'), {
    kind: 'completed',
    epochSeconds: EPOCH + 72,
    jobName: 'build',
    result: 'Succeeded',
    status: 'success',
  })
  const tricky = parseRunnerLine('2025-01-15 10:30:00Z: Job x completed with result: Failed completed with result: Canceled\r')
  t.match(tricky, { kind: 'completed', jobName: 'x completed with result: Failed', result: 'Canceled', status: 'cancelled' })
  t.match(parseRunnerLine('2025-01-15 10:30:00Z: Job Ünïcødé 🚀 completed with result: Skipped'), { jobName: 'Ünïcødé 🚀', status: 'skipped' })
})

t.test('every runner result maps to a status, and only Succeeded* to success', async (t) => {
  t.equal(statusForResult('Succeeded'), 'success')
  t.equal(statusForResult('SucceededWithIssues'), 'success')
  t.equal(statusForResult('Failed'), 'failure')
  t.equal(statusForResult('Canceled'), 'cancelled')
  t.equal(statusForResult('Abandoned'), 'cancelled')
  t.equal(statusForResult('Skipped'), 'skipped')
  t.equal(statusForResult('SomethingNew'), 'unknown')
  t.match(parseRunnerLine('2025-01-15 10:30:00Z: Job build completed with result: Exploded'), { status: 'unknown', result: 'Exploded' })
})

t.test('other lines are not job lines', async (t) => {
  for (const line of [
    '',
    '√ Connected to GitHub',
    'Current runner version: \'2.329.0\'',
    '2025-01-15 10:30:00Z: Listening for Jobs',
    '2025-01-15 10:30:00Z: Job build is running',
    '2025-01-15 10:30:00Z: Job  completed with result: Succeeded',
    '2025-01-15 10:30:00Z: Job build completed with result: ',
    '2025-01-15 10:30:00Z: Job build completed with result: Succeeded now',
    '2025-01-15T10:30:00Z: Running job: build',
    '2025-01-15 10:30:00: Running job: build',
    ' 2025-01-15 10:30:00Z: Running job: build',
    '2025-02-30 10:30:00Z: Running job: build',
    '2025-01-15 24:00:00Z: Running job: build',
    '2025-01-15 10:60:00Z: Running job: build',
    '2025-01-15 10:30:60Z: Running job: build',
    '2025-13-15 10:30:00Z: Running job: build',
    '0099-01-15 10:30:00Z: Running job: build',
  ]) {
    t.equal(parseRunnerLine(line), undefined, JSON.stringify(line))
  }
})

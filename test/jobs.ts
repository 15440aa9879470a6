import t from 'tap'
import {
  DURATION_BUCKETS,
  FINISHED_STATUSES,
  applyEvent,
  emptyCounts,
  parseJobLine,
  type JobCounts,
  type JobEvent,
  type JobStatus,
} from '../src/collector/jobs.js'

const event = (epochSeconds: number, status: JobStatus, durationSeconds: number, jobId = 'job'): JobEvent => ({
  epochSeconds,
  status,
  durationSeconds,
  jobId,
})

t.test('a well-formed line is one event', async (t) => {
  t.same(parseJobLine('1700000000|success|12.5|build-42'), {
    kind: 'event',
    event: { epochSeconds: 1700000000, status: 'success', durationSeconds: 12.5, jobId: 'build-42' },
  })
  t.same(parseJobLine('1700000000.25|started|0|x'), {
    kind: 'event',
    event: { epochSeconds: 1700000000.25, status: 'started', durationSeconds: 0, jobId: 'x' },
  })
})

t.test('every status word and alias, in any case', async (t) => {
  const aliases: [string, JobStatus][] = [
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
  ]
  for (const [word, status] of aliases) {
    for (const spelling of [word, word.toUpperCase(), word[0]!.toUpperCase() + word.slice(1)]) {
      const parsed = parseJobLine(`1|${spelling}|2|id`)
      t.same(parsed, { kind: 'event', event: { epochSeconds: 1, status, durationSeconds: 2, jobId: 'id' } }, spelling)
    }
  }
  t.same(parseJobLine('1|SucceededWithIssues|2|id'), { kind: 'event', event: event(1, 'success', 2, 'id') })
})

t.test('unknown status words are invalid, Unicode case folding included', async (t) => {
  for (const word of ['', 'ok', 'succes', 'successful', 'running', ' success', 'success ', 'in_progress']) {
    t.same(parseJobLine(`1|${word}|2|id`), { kind: 'invalid' }, JSON.stringify(word))
  }
  // "SKIPPED" with a Kelvin sign lower-cases to "skipped" under Unicode rules; it is not our word.
  t.same(parseJobLine('1|S\u212AIPPED|2|id'), { kind: 'invalid' })
  t.same(parseJobLine('1|sk\u00efpped|2|id'), { kind: 'invalid' })
})

t.test('numbers are non-negative decimal seconds and nothing else', async (t) => {
  for (const good of ['0', '7', '1700000000', '12.5', '0.001', '007', '1234567890123456789', '1700000000.123456']) {
    const parsed = parseJobLine(`${good}|success|${good}|id`)
    t.equal(parsed.kind, 'event', good)
    if (parsed.kind === 'event') {
      t.equal(parsed.event.epochSeconds, Number(good), `epoch ${good}`)
      t.equal(parsed.event.durationSeconds, Number(good), `duration ${good}`)
    }
  }
  const bad = ['', 'NaN', 'Infinity', '1e3', '-1', '+1', '0x10', '1 2', ' 1', '1 ', '12.', '.5', '1.2.3', '1,5', '١٢', '9'.repeat(400)]
  for (const number of bad) {
    t.same(parseJobLine(`${number}|success|5|id`), { kind: 'invalid' }, `epoch ${JSON.stringify(number)}`)
    t.same(parseJobLine(`1700000000|success|${number}|id`), { kind: 'invalid' }, `duration ${JSON.stringify(number)}`)
  }
})

t.test('job_id may be empty or missing; extra fields are ignored', async (t) => {
  t.same(parseJobLine('1|success|2|'), { kind: 'event', event: event(1, 'success', 2, '') })
  t.same(parseJobLine('1|success|2'), { kind: 'event', event: event(1, 'success', 2, '') })
  t.same(parseJobLine('1|success|2|id|extra|more'), { kind: 'event', event: event(1, 'success', 2, 'id') })
  t.same(parseJobLine('1|success|2||extra'), { kind: 'event', event: event(1, 'success', 2, '') })
  t.same(parseJobLine('1|success|2|id with spaces ünïcode'), {
    kind: 'event',
    event: event(1, 'success', 2, 'id with spaces ünïcode'),
  })
})

t.test('missing fields are invalid', async (t) => {
  for (const line of ['1700000000', '1700000000|success', '1700000000|success|', '|success|5|id', 'garbage', '\u0000\u00ff|\ufffd']) {
    t.same(parseJobLine(line), { kind: 'invalid' }, JSON.stringify(line))
  }
})

t.test('a trailing CR is tolerated', async (t) => {
  t.same(parseJobLine('1|success|2|id\r'), { kind: 'event', event: event(1, 'success', 2, 'id') })
  t.same(parseJobLine('1|success|2\r'), { kind: 'event', event: event(1, 'success', 2, '') })
  t.same(parseJobLine('1|success|2|id|extra\r'), { kind: 'event', event: event(1, 'success', 2, 'id') })
  // Only one, and only at the end.
  t.same(parseJobLine('1|success|2\r\r'), { kind: 'invalid' })
  t.same(parseJobLine('1\r|success|2|id'), { kind: 'invalid' })
})

t.test('blank and whitespace-only lines are blank, not invalid', async (t) => {
  for (const line of ['', '\r', ' ', '\t', '  \t \r']) {
    t.same(parseJobLine(line), { kind: 'blank' }, JSON.stringify(line))
  }
  t.same(parseJobLine(' x '), { kind: 'invalid' })
  t.same(parseJobLine(' | | '), { kind: 'invalid' })
})

t.test('empty counts', async (t) => {
  const counts = emptyCounts()
  t.same(counts, {
    jobs: { success: 0, failure: 0, cancelled: 0, skipped: 0, unknown: 0 },
    bucketCounts: new Array(12).fill(0),
    durationSum: 0,
    durationCount: 0,
    busy: false,
    lastCompletedEpochSeconds: undefined,
    invalidLines: 0,
  })
  t.same(Object.keys(counts.jobs), [...FINISHED_STATUSES])
  t.not(emptyCounts().bucketCounts, counts.bucketCounts, 'each call has its own arrays')
  t.same(DURATION_BUCKETS, [5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200])
})

t.test('each finished status is counted under its own name', async (t) => {
  const counts = emptyCounts()
  FINISHED_STATUSES.forEach((status, i) => {
    for (let n = 0; n <= i; n++) applyEvent(counts, event(1, status, 1))
  })
  t.same(counts.jobs, { success: 1, failure: 2, cancelled: 3, skipped: 4, unknown: 5 })
  t.equal(counts.durationCount, 15)
})

t.test('histogram bucket edges are inclusive upper bounds', async (t) => {
  const bucketOf = (durationSeconds: number): number => {
    const counts = emptyCounts()
    applyEvent(counts, event(1, 'success', durationSeconds))
    return counts.bucketCounts.indexOf(1)
  }
  t.equal(bucketOf(0), 0)
  t.equal(bucketOf(5), 0, '5 is in le="5"')
  t.equal(bucketOf(5.000001), 1)
  t.equal(bucketOf(15), 1)
  DURATION_BUCKETS.forEach((bound, i) => {
    t.equal(bucketOf(bound), i, `${bound} is in le="${bound}"`)
    t.equal(bucketOf(bound + 0.5), i + 1, `${bound + 0.5} is above le="${bound}"`)
  })
  t.equal(bucketOf(7200), 10)
  t.equal(bucketOf(7200.001), 11, 'above the last bound is the +Inf-only bucket')
  t.equal(bucketOf(1e9), 11)
})

t.test('sum, count and the latest completion', async (t) => {
  const counts: JobCounts = emptyCounts()
  applyEvent(counts, event(1700000100, 'success', 10.5))
  applyEvent(counts, event(1700000050, 'failure', 2)) // an older finish written late
  applyEvent(counts, event(1700000200, 'started', 0))
  t.equal(counts.durationSum, 12.5)
  t.equal(counts.durationCount, 2)
  t.equal(counts.lastCompletedEpochSeconds, 1700000100, 'the max epoch of finish lines, not the last one')
  t.same(counts.bucketCounts, [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
  t.same(counts.jobs, { success: 1, failure: 1, cancelled: 0, skipped: 0, unknown: 0 }, 'started counts no job')
})

t.test('busy follows the last job event', async (t) => {
  const counts = emptyCounts()
  t.equal(counts.busy, false)
  applyEvent(counts, event(1, 'started', 0))
  t.equal(counts.busy, true)
  applyEvent(counts, event(2, 'started', 0))
  t.equal(counts.busy, true)
  applyEvent(counts, event(3, 'cancelled', 1))
  t.equal(counts.busy, false)
  applyEvent(counts, event(4, 'started', 0))
  applyEvent(counts, event(5, 'skipped', 0))
  t.equal(counts.busy, false)
  t.equal(counts.durationCount, 2)
})

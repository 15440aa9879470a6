import { appendFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { JobLogReader } from '../src/collector/job-log.js'
import {
  endsWithResultLine,
  followRunnerOutput,
  lastResumePoint,
  readTail,
  RunnerOutputFollower,
  type RunnerOutputFollowerOptions,
} from '../src/runner/follower.js'

const T0 = Date.UTC(2025, 0, 15, 10, 30, 0) / 1000

function stamp(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z')
}
const running = (at: number, name: string): string => `${stamp(at)}: Running job: ${name}\n`
const result = (at: number, name: string, word: string): string => `${stamp(at)}: Job ${name} completed with result: ${word}\n`
const startedLine = (at: number, id: string): string => `${at}|started|0|${id}\n`

const BANNER = '\u221a Connected to GitHub\n\nCurrent runner version: \'2.329.0\'\n' + `${stamp(T0 - 10)}: Listening for Jobs\n`

interface Setup {
  dir: string
  output: string
  jobsLog: string
  logs: string[]
  recorded: string[]
  follower(overrides?: Partial<RunnerOutputFollowerOptions>): RunnerOutputFollower
}

function setup(t: Test): Setup {
  const dir = t.testdir({})
  const logs: string[] = []
  const recorded: string[] = []
  const output = join(dir, 'runner-output.log')
  const jobsLog = join(dir, 'jobs.log')
  return {
    dir,
    output,
    jobsLog,
    logs,
    recorded,
    follower: (overrides = {}) =>
      new RunnerOutputFollower({
        runnerOutput: output,
        jobsLog,
        log: (message) => logs.push(message),
        signal: new AbortController().signal,
        onJobRecorded: (line) => recorded.push(line),
        ...overrides,
      }),
  }
}

function finishLines(jobsLog: string): string[] {
  return readFileSync(jobsLog, 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !/\|started\|0\|[^|]*$/.test(line))
}

t.test('results become finish lines with the hook identity and the runner duration', async (t) => {
  const s = setup(t)
  // What the runner prints and what the job-started hook appends, interleaved as they happen.
  writeFileSync(s.output, BANNER + running(T0, 'build'))
  writeFileSync(s.jobsLog, startedLine(T0 + 0.4, 'octo/app/1/1/build'))
  appendFileSync(s.output, result(T0 + 42, 'build', 'Succeeded') + running(T0 + 50, 'test (ubuntu, 20)'))
  appendFileSync(s.jobsLog, startedLine(T0 + 50.2, 'octo/app/1/1/test'))
  appendFileSync(s.output, result(T0 + 67, 'test (ubuntu, 20)', 'Failed') + running(T0 + 70, 'deploy'))
  // deploy was cancelled before its hook ran: the name stands in for the id.
  appendFileSync(s.output, result(T0 + 75, 'deploy', 'Canceled'))

  const follower = s.follower()
  await follower.pass()
  const size = readFileSync(s.output).length
  t.same(finishLines(s.jobsLog), [
    `${T0 + 42}|success|42|octo/app/1/1/build|runner-output@${Buffer.byteLength(BANNER + running(T0, 'build') + result(T0 + 42, 'build', 'Succeeded'))}|started@${T0 + 0.4}`,
    // Read after test's hook ran: the finish line of build is followed by test's start again.
    `${T0 + 50.2}|started|0|octo/app/1/1/test|repeated`,
    `${T0 + 67}|failure|17|octo/app/1/1/test|runner-output@${size - running(T0 + 70, 'deploy').length - result(T0 + 75, 'deploy', 'Canceled').length}|started@${T0 + 50.2}`,
    `${T0 + 75}|cancelled|5|deploy|runner-output@${size}|started@${T0 + 50.2}`,
  ])
  t.equal(follower.offset, size)
  t.same(s.recorded.map((line) => line.split('|')[1]), ['success', 'failure', 'cancelled'])
  t.same(s.logs, [])

  await follower.pass()
  t.equal(finishLines(s.jobsLog).length, 4, 'a pass with nothing new writes nothing')
})

t.test('a result recorded after the next job started leaves that job busy', async (t) => {
  const s = setup(t)
  writeFileSync(s.output, running(T0, 'a'))
  writeFileSync(s.jobsLog, startedLine(T0 + 1, 'id-a'))
  appendFileSync(s.output, result(T0 + 10, 'a', 'Succeeded') + running(T0 + 12, 'b'))
  // b's hook ran before the follower looked at a's result.
  appendFileSync(s.jobsLog, startedLine(T0 + 13.5, 'id-b'))
  const follower = s.follower()
  await follower.pass()
  t.same(readFileSync(s.jobsLog, 'utf8').split('\n').slice(2, 4).map((line) => line.split('|').slice(0, 5).join('|')), [
    `${T0 + 10}|success|10|id-a|runner-output@${Buffer.byteLength(running(T0, 'a') + result(T0 + 10, 'a', 'Succeeded'))}`,
    `${T0 + 13.5}|started|0|id-b|repeated`,
  ])
  const reader = new JobLogReader(s.jobsLog)
  await reader.readNew()
  t.match(reader.counts, { busy: true, jobs: { success: 1 } }, 'what the collector makes of it')

  appendFileSync(s.output, result(T0 + 20, 'b', 'Failed'))
  await s.follower().pass()
  await reader.readNew()
  t.match(reader.counts, { busy: false, jobs: { success: 1, failure: 1 }, durationSum: 18 })
  t.same(finishLines(s.jobsLog).map((line) => line.split('|').slice(1, 4).join('|')), ['success|10|id-a', 'started|0|id-b', 'failure|8|id-b'])
})

t.test('a line split across writes waits for its end; CRLF and non-ASCII names are fine', async (t) => {
  const s = setup(t)
  const follower = s.follower()
  await follower.pass()
  t.same(s.logs, [], 'a missing runner output is not a problem: tee has not created it yet')

  const line = result(T0 + 3, 'Ünïcødé 🚀', 'SucceededWithIssues').replace('\n', '\r\n')
  const bytes = Buffer.from(running(T0, 'Ünïcødé 🚀') + line)
  // Cut inside a multi-byte character of the result line.
  const cut = bytes.lastIndexOf(Buffer.from('🚀', 'utf8')) + 2
  writeFileSync(s.output, bytes.subarray(0, cut))
  await follower.pass()
  t.equal(follower.offset, Buffer.byteLength(running(T0, 'Ünïcødé 🚀')))
  t.equal(s.recorded.length, 0)

  appendFileSync(s.output, bytes.subarray(cut))
  await follower.pass()
  t.same(finishLines(s.jobsLog), [`${T0 + 3}|success|3|Ünïcødé 🚀|runner-output@${bytes.length}`])
})

t.test('a restarted follower resumes after the last recorded result: nothing twice, nothing lost', async (t) => {
  const s = setup(t)
  writeFileSync(s.output, BANNER + running(T0, 'a') + result(T0 + 10, 'a', 'Succeeded') + running(T0 + 20, 'b'))
  writeFileSync(s.jobsLog, startedLine(T0 + 1, 'id-a'))
  await s.follower().pass()
  t.equal(finishLines(s.jobsLog).length, 1)

  // The exporter is restarted mid-job; b's hook ran meanwhile.
  appendFileSync(s.jobsLog, startedLine(T0 + 21, 'id-b'))
  const restarted = s.follower()
  await restarted.pass()
  t.equal(finishLines(s.jobsLog).length, 1, 'a is not recorded again')
  appendFileSync(s.output, result(T0 + 50, 'b', 'Failed'))
  await restarted.pass()
  t.same(
    finishLines(s.jobsLog).map((line) => line.split('|').slice(0, 4).join('|')),
    [`${T0 + 10}|success|10|id-a`, `${T0 + 50}|failure|30|id-b`],
    'b keeps its Running stamp (read again after the resume point) and its hook id',
  )

  const third = s.follower()
  await third.pass()
  t.equal(finishLines(s.jobsLog).length, 2)
  t.equal(third.offset, readFileSync(s.output).length)
  t.same(s.logs, [])
})

t.test('a restarted follower knows which started line the last result took', async (t) => {
  const s = setup(t)
  // a lasts under a second; b starts in that same second and is cancelled before its hook runs.
  writeFileSync(s.output, running(T0, 'a') + result(T0, 'a', 'Succeeded') + running(T0, 'b'))
  writeFileSync(s.jobsLog, startedLine(T0 + 0.5, 'id-a'))
  await s.follower().pass()
  appendFileSync(s.output, result(T0 + 3, 'b', 'Canceled'))
  await s.follower().pass()
  t.same(finishLines(s.jobsLog).map((line) => line.split('|').slice(1, 4).join('|')), ['success|0|id-a', 'cancelled|3|b'])
})

t.test('a runner output that is not the one the job log came from is read from the start', async (t) => {
  const s = setup(t)
  writeFileSync(s.output, running(T0, 'a') + result(T0 + 10, 'a', 'Succeeded'))
  await s.follower().pass()
  // A new container: a new runner output file, the job log kept on a volume.
  writeFileSync(s.output, running(T0 + 100, 'new') + result(T0 + 130, 'new', 'Skipped') + 'x'.repeat(100) + '\n')
  await s.follower().pass()
  t.same(
    finishLines(s.jobsLog).map((line) => line.split('|').slice(0, 4).join('|')),
    [`${T0 + 10}|success|10|a`, `${T0 + 130}|skipped|30|new`],
  )
  t.match(s.logs, [/is not the file the job log's last result came from; reading it from the start/])
})

t.test('a runner output replaced or truncated while followed is read from the start', async (t) => {
  const s = setup(t)
  const follower = s.follower()
  writeFileSync(s.output, running(T0, 'a') + result(T0 + 10, 'a', 'Succeeded') + BANNER)
  await follower.pass()

  const replacement = join(s.dir, 'new-output')
  writeFileSync(replacement, running(T0 + 20, 'b') + result(T0 + 25, 'b', 'Abandoned') + BANNER)
  renameSync(replacement, s.output)
  await follower.pass()

  writeFileSync(s.output, running(T0 + 30, 'c') + result(T0 + 31, 'c', 'Failed'))
  await follower.pass()
  t.same(finishLines(s.jobsLog).map((line) => line.split('|')[1]), ['success', 'cancelled', 'failure'])
  t.equal(s.logs.length, 2)
  t.match(s.logs[0], /was replaced or truncated; reading it from the start/)

  rmSync(s.output)
  await follower.pass()
  writeFileSync(s.output, running(T0 + 40, 'd') + result(T0 + 41, 'd', 'Succeeded'))
  await follower.pass()
  t.equal(finishLines(s.jobsLog).length, 4, 'a file that comes back is followed from its start')
})

t.test('over-long lines are skipped as they stream by', async (t) => {
  const s = setup(t)
  const follower = s.follower()
  const medium = 'm'.repeat(20_000) + '\n'
  const huge = 'h'.repeat(200_000)
  writeFileSync(s.output, medium + running(T0, 'a') + huge)
  await follower.pass()
  appendFileSync(s.output, 'still huge' + result(T0 + 1, 'not a result: inside the huge line', 'Failed'))
  appendFileSync(s.output, result(T0 + 2, 'a', 'Succeeded'))
  await follower.pass()
  t.same(finishLines(s.jobsLog).map((line) => line.split('|').slice(0, 4).join('|')), [`${T0 + 2}|success|2|a`])
  t.equal(follower.offset, readFileSync(s.output).length)
})

t.test('a job log that cannot be written keeps the result for the next pass', async (t) => {
  const s = setup(t)
  writeFileSync(s.output, running(T0, 'a') + result(T0 + 5, 'a', 'Failed') + running(T0 + 6, 'b') + result(T0 + 9, 'b', 'Succeeded'))
  mkdirSync(join(s.dir, 'logs'))
  const follower2 = s.follower({ jobsLog: join(s.dir, 'logs', 'missing-dir', 'jobs.log') })
  await follower2.pass()
  await follower2.pass()
  t.equal(follower2.offset, running(T0, 'a').length, 'the result line is not skipped')
  t.equal(s.logs.length, 1, 'the problem is logged once')
  t.match(s.logs[0], /cannot append to the job log .*missing-dir\/jobs.log \(ENOENT\); will record the result later/)
  mkdirSync(join(s.dir, 'logs', 'missing-dir'))
  await follower2.pass()
  t.equal(finishLines(join(s.dir, 'logs', 'missing-dir', 'jobs.log')).length, 2)
})

t.test('a job log that cannot be read: no result is recorded until it can', async (t) => {
  const s = setup(t)
  writeFileSync(s.output, running(T0, 'a') + result(T0 + 5, 'a', 'Failed'))
  mkdirSync(s.jobsLog)
  const follower = s.follower()
  await follower.pass()
  await follower.pass()
  t.equal(s.logs.length, 1)
  t.match(s.logs[0], /cannot read the job log .*jobs.log \(EISDIR\); waiting for it/)
  t.equal(follower.offset, 0)
  rmSync(s.jobsLog, { recursive: true })
  await follower.pass()
  t.equal(finishLines(s.jobsLog).length, 1)
})

t.test('the job log turning unreadable between resume and a result is retried', async (t) => {
  const s = setup(t)
  const follower = s.follower()
  await follower.pass()
  mkdirSync(s.jobsLog)
  writeFileSync(s.output, running(T0, 'a') + result(T0 + 5, 'a', 'Failed'))
  await follower.pass()
  t.match(s.logs, [/cannot read the job log .* \(EISDIR\); will record the result later/])
  t.equal(follower.offset, running(T0, 'a').length)
  rmSync(s.jobsLog, { recursive: true })
  await follower.pass()
  t.equal(finishLines(s.jobsLog).length, 1)
})

t.test('a runner output that cannot be read is reported once', async (t) => {
  const s = setup(t)
  mkdirSync(s.output)
  const follower = s.follower()
  await follower.pass()
  await follower.pass()
  t.equal(s.logs.length, 1)
  t.match(s.logs[0], /cannot read the runner output .* \(EISDIR\); retrying/)
})

t.test('files that cannot be opened: reported once, or passed on to the caller', async (t) => {
  const mocked = await t.mockImport<typeof import('../src/runner/follower.js')>('../src/runner/follower.js', {
    'node:fs/promises': {
      ...(await import('node:fs/promises')),
      open: async (path: string, flags: number) => {
        if (path.endsWith('runner-output.log') || path.includes('denied')) throw Object.assign(new Error('denied'), { code: 'EACCES' })
        return (await import('node:fs/promises')).open(path, flags)
      },
    },
  })
  const { RunnerOutputFollower: Mocked } = mocked
  await t.rejects(mocked.readTail('/denied/jobs.log', 10), { code: 'EACCES' })
  await t.rejects(mocked.lastResumePoint('/denied/jobs.log'), { code: 'EACCES' })
  const s = setup(t)
  const logs: string[] = []
  const follower = new Mocked({ runnerOutput: s.output, jobsLog: s.jobsLog, log: (m) => logs.push(m), signal: new AbortController().signal })
  await follower.pass()
  await follower.pass()
  t.same(logs, [`cannot read the runner output ${s.output} (EACCES); retrying`])
})

t.test('a failing append or callback is reported with its message', async (t) => {
  const { RunnerOutputFollower: Mocked } = await t.mockImport<typeof import('../src/runner/follower.js')>('../src/runner/follower.js', {
    'node:fs/promises': {
      ...(await import('node:fs/promises')),
      appendFile: async () => {
        throw new Error('disk on fire')
      },
    },
  })
  const s = setup(t)
  writeFileSync(s.output, running(T0, 'a') + result(T0 + 5, 'a', 'Succeeded'))
  const logs: string[] = []
  await new Mocked({ runnerOutput: s.output, jobsLog: s.jobsLog, log: (m) => logs.push(m), signal: new AbortController().signal }).pass()
  t.same(logs, [`cannot append to the job log ${s.jobsLog} (disk on fire); will record the result later`])

  const follower = s.follower({
    onJobRecorded: () => {
      throw new Error('oops')
    },
  })
  await follower.pass()
  t.same(s.logs, ['bug: onJobRecorded threw oops; the job is recorded all the same'])
  t.equal(finishLines(s.jobsLog).length, 1)
  await follower.pass()
  t.equal(finishLines(s.jobsLog).length, 1, 'and only once')
})

t.test('followRunnerOutput polls until aborted', async (t) => {
  const s = setup(t)
  const controller = new AbortController()
  let onRecorded: (line: string) => void = () => {}
  const firstRecord = new Promise<string>((resolve) => (onRecorded = resolve))
  const done = followRunnerOutput({
    runnerOutput: s.output,
    jobsLog: s.jobsLog,
    log: (m) => s.logs.push(m),
    signal: controller.signal,
    pollMs: 10,
    onJobRecorded: (line) => onRecorded(line),
  })
  writeFileSync(s.output, running(T0, 'a') + result(T0 + 5, 'a', 'Succeeded'))
  t.match(await firstRecord, new RegExp(`^${T0 + 5}\\|success\\|5\\|a\\|runner-output@\\d+\\n$`))
  const secondRecord = new Promise<string>((resolve) => (onRecorded = resolve))
  appendFileSync(s.output, running(T0 + 6, 'b') + result(T0 + 9, 'b', 'Failed'))
  t.match(await secondRecord, /\|failure\|3\|b\|/, 'picked up by a later poll')
  controller.abort()
  await done
  t.same(s.logs, [])

  const aborted = new AbortController()
  aborted.abort()
  await followRunnerOutput({ runnerOutput: s.output, jobsLog: s.jobsLog, log: () => {}, signal: aborted.signal })
  t.pass('an aborted signal returns at once (default poll interval)')
})

t.test('the helpers', async (t) => {
  const s = setup(t)
  t.equal(await readTail(s.jobsLog, 10), '', 'a missing file has an empty tail')
  writeFileSync(s.jobsLog, 'first line\nsecond\nthird\n')
  t.equal(await readTail(s.jobsLog, 13), 'third\n', 'the partial first line is dropped')
  t.equal(await readTail(s.jobsLog, 1000), 'first line\nsecond\nthird\n')
  mkdirSync(join(s.dir, 'd'))
  await t.rejects(readTail(join(s.dir, 'd'), 10), { code: 'EISDIR' })

  t.equal(await lastResumePoint(join(s.dir, 'none')), undefined)
  writeFileSync(s.jobsLog, `1|success|1|a|runner-output@10\n${'z'.repeat(20_000)}\n2|failure|1|b|runner-output@20\n3|started|0|c\n`)
  t.same(await lastResumePoint(s.jobsLog), { epochSeconds: 2, outputOffset: 20, lastPairedStartedEpoch: undefined }, 'over-long lines are skipped')

  writeFileSync(s.output, running(T0, 'a') + result(T0 + 5, 'a', 'Succeeded'))
  const end = readFileSync(s.output).length
  t.equal(await endsWithResultLine(s.output, { epochSeconds: T0 + 5, outputOffset: end, lastPairedStartedEpoch: undefined }), true)
  t.equal(await endsWithResultLine(s.output, { epochSeconds: T0 + 6, outputOffset: end, lastPairedStartedEpoch: undefined }), false, 'another stamp')
  t.equal(await endsWithResultLine(s.output, { epochSeconds: T0 + 5, outputOffset: end - 1, lastPairedStartedEpoch: undefined }), false, 'not a line end')
  t.equal(await endsWithResultLine(s.output, { epochSeconds: T0, outputOffset: running(T0, 'a').length, lastPairedStartedEpoch: undefined }), false, 'not a result')
  t.equal(await endsWithResultLine(s.output, { epochSeconds: T0 + 5, outputOffset: end + 10, lastPairedStartedEpoch: undefined }), false, 'past the end')
  t.equal(await endsWithResultLine(join(s.dir, 'none'), { epochSeconds: T0 + 5, outputOffset: end, lastPairedStartedEpoch: undefined }), false, 'missing')
})

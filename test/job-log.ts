import { execFileSync } from 'node:child_process'
import { appendFileSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmdirSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs'
import * as fsPromises from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { JobLogReader } from '../src/collector/job-log.js'
import { emptyCounts, type JobCounts } from '../src/collector/jobs.js'

const logIn = (t: Test): string => join(t.testdir({}), 'jobs.log')

/** A valid job line of exactly `bytes` bytes (without the line ending). */
const lineOfBytes = (bytes: number): string => {
  const prefix = '1700000000|success|5|'
  return prefix + 'x'.repeat(bytes - prefix.length)
}

/** The reader holds the log open between passes: close it when the test ends. */
const closing = <R extends { close(): Promise<void> }>(t: Test, reader: R): R => {
  t.teardown(() => reader.close())
  return reader
}

const jobTotals = (counts: JobCounts): number => Object.values(counts.jobs).reduce((a, b) => a + b, 0)

t.test('a missing log is zero new lines, not an error', async (t) => {
  const reader = closing(t, new JobLogReader(logIn(t)))
  t.same(await reader.readNew(), { bytesRead: 0, lines: 0, restarted: false })
  t.same(reader.counts, emptyCounts())
})

t.test('each pass reads only what was appended since the last one', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|started|0|a\n1700000010|success|10|a\n')
  const reader = closing(t, new JobLogReader(path))
  t.same(await reader.readNew(), { bytesRead: 47, lines: 2, restarted: false })
  t.equal(reader.counts.jobs.success, 1)

  const appended = '1700000020|started|0|b\n1700000090|failure|70|b\n'
  appendFileSync(path, appended)
  t.same(await reader.readNew(), { bytesRead: appended.length, lines: 2, restarted: false })
  t.same(await reader.readNew(), { bytesRead: 0, lines: 0, restarted: false }, 'nothing new, nothing read')
  t.same(reader.counts.jobs, { success: 1, failure: 1, cancelled: 0, skipped: 0, unknown: 0 })
  t.same(reader.counts.bucketCounts, [0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
  t.equal(reader.counts.durationSum, 80)
  t.equal(reader.counts.lastCompletedEpochSeconds, 1700000090)
  t.equal(reader.counts.busy, false)
  t.equal(reader.counts.invalidLines, 0)
})

t.test('a line split across two writes is counted once, when complete', async (t) => {
  const path = logIn(t)
  const reader = closing(t, new JobLogReader(path))
  appendFileSync(path, '1700000000|succ')
  t.same(await reader.readNew(), { bytesRead: 15, lines: 0, restarted: false })
  t.same(reader.counts, emptyCounts(), 'an unfinished line is not counted, not even as invalid')
  t.same(await reader.readNew(), { bytesRead: 15, lines: 0, restarted: false }, 'and it is read again next pass')

  appendFileSync(path, 'ess|5|a\n1700000001|started|0|b')
  t.same(await reader.readNew(), { bytesRead: 45, lines: 1, restarted: false })
  t.equal(reader.counts.jobs.success, 1)
  t.equal(reader.counts.busy, false, 'the unfinished started line is not seen yet')

  appendFileSync(path, '\n')
  t.same(await reader.readNew(), { bytesRead: 23, lines: 1, restarted: false })
  t.equal(reader.counts.busy, true)
  t.equal(reader.counts.jobs.success, 1)
  t.equal(reader.counts.invalidLines, 0)
})

t.test('a write split inside a CRLF', async (t) => {
  const path = logIn(t)
  const reader = closing(t, new JobLogReader(path))
  appendFileSync(path, '1700000000|failed|5|a\r')
  t.equal((await reader.readNew()).lines, 0)
  appendFileSync(path, '\n1700000001|Completed|6|b\r\n')
  t.equal((await reader.readNew()).lines, 2)
  t.same(reader.counts.jobs, { success: 1, failure: 1, cancelled: 0, skipped: 0, unknown: 0 })
  t.equal(reader.counts.invalidLines, 0)
})

t.test('a multi-byte character split across writes', async (t) => {
  const path = logIn(t)
  const reader = closing(t, new JobLogReader(path))
  const line = Buffer.from('1700000000|success|5|jöb-名前\n')
  appendFileSync(path, line.subarray(0, 24)) // inside the ö
  await reader.readNew()
  appendFileSync(path, line.subarray(24, 29)) // inside 名
  await reader.readNew()
  appendFileSync(path, line.subarray(29))
  t.same(await reader.readNew(), { bytesRead: line.length, lines: 1, restarted: false })
  t.equal(reader.counts.jobs.success, 1)
  t.equal(reader.counts.invalidLines, 0)
})

t.test('CRLF logs, blank lines and whitespace-only lines', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|started|0|a\r\n\r\n\n   \r\n\t\n1700000100|success|100|a\r\n')
  const reader = closing(t, new JobLogReader(path))
  t.equal((await reader.readNew()).lines, 6, 'blank lines are lines')
  t.equal(reader.counts.jobs.success, 1)
  t.equal(reader.counts.invalidLines, 0, 'but not invalid ones')
  t.same(reader.counts.bucketCounts, [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
})

t.test('garbage and binary bytes are invalid lines and do not disturb the rest', async (t) => {
  const path = logIn(t)
  // Deterministic noise without line feeds, with NULs, CRs, 0xff, broken UTF-8 and pipes.
  let seed = 42
  const noise = Buffer.alloc(3000, 0).map(() => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    const byte = seed >> 23
    return byte === 0x0a ? 0x0b : byte
  })
  const garbage = Buffer.concat([
    Buffer.from('1700000000|success|5|a\n'),
    noise,
    Buffer.from('\n\u0000\u0000\u0000\n\xff\xfe|success|5|x\n1700000001|success|5|\xff\xfe'),
    Buffer.from([0xc3, 0x28, 0x0a]), // invalid UTF-8 in a job id: still a job
    Buffer.from('1|success|5|a|\x00\r\n1|nope|5|a\n'),
  ])
  writeFileSync(path, garbage)
  const reader = closing(t, new JobLogReader(path))
  t.equal((await reader.readNew()).lines, 7)
  t.equal(reader.counts.jobs.success, 3)
  t.equal(reader.counts.invalidLines, 4)
})

t.test('line length: 4 KiB is fine, 4 KiB + 1 byte is invalid', async (t) => {
  const path = logIn(t)
  writeFileSync(
    path,
    [lineOfBytes(4096), lineOfBytes(4097), `${lineOfBytes(4096)}\r`, `${lineOfBytes(4097)}\r`, '1700000000|skipped|0|'].join('\n') + '\n',
  )
  const reader = closing(t, new JobLogReader(path))
  t.equal((await reader.readNew()).lines, 5)
  t.equal(reader.counts.jobs.success, 2, 'a 4096-byte line, with or without CR')
  t.equal(reader.counts.invalidLines, 2, 'a 4097-byte line, with or without CR')
  t.equal(reader.counts.jobs.skipped, 1, 'the next line is read normally')
})

t.test('line length is counted in bytes, and across passes', async (t) => {
  const path = logIn(t)
  const reader = closing(t, new JobLogReader(path, { maxLineBytes: 32 }))
  const prefix = '1700000000|success|5|'
  appendFileSync(path, `${prefix}ééééé`) // 31 bytes, 26 characters
  await reader.readNew()
  appendFileSync(path, 'x\r')
  await reader.readNew()
  appendFileSync(path, '\n') // 32 bytes + CRLF: fine
  t.equal((await reader.readNew()).lines, 1)
  t.equal(reader.counts.jobs.success, 1)

  appendFileSync(path, `${prefix}éééééx`) // 32 bytes held back
  await reader.readNew()
  appendFileSync(path, 'y') // 33 bytes could still be 32 and a CR: held back
  t.same(await reader.readNew(), { bytesRead: 33, lines: 0, restarted: false })
  appendFileSync(path, 'more bytes of the same line') // over-long now: dropped
  t.same(await reader.readNew(), { bytesRead: 60, lines: 0, restarted: false })
  appendFileSync(path, 'and more')
  t.same(await reader.readNew(), { bytesRead: 8, lines: 0, restarted: false }, 'dropped bytes are not read again')
  t.equal(reader.counts.invalidLines, 0, 'not counted before its line feed')
  appendFileSync(path, 'end\n1700000000|failure|5|\n')
  t.same(await reader.readNew(), { bytesRead: 26, lines: 2, restarted: false })
  t.equal(reader.counts.invalidLines, 1, 'counted once, when its line feed arrives')
  t.equal(reader.counts.jobs.failure, 1)
  t.equal(reader.counts.jobs.success, 1)
})

t.test('over-long lines that span read chunks within one pass', async (t) => {
  const path = logIn(t)
  const huge = 'y'.repeat(700 * 1024) // longer than two 256 KiB reads
  writeFileSync(path, `1700000000|success|5|a\n${huge}\n1700000001|success|5|b\n${huge}|tail\n${huge}`)
  const reader = closing(t, new JobLogReader(path))
  const result = await reader.readNew()
  t.equal(result.lines, 4)
  t.equal(reader.counts.jobs.success, 2)
  t.equal(reader.counts.invalidLines, 2)
  appendFileSync(path, '\n1700000002|unknown|5|c\n')
  t.same(await reader.readNew(), { bytesRead: 24, lines: 2, restarted: false })
  t.equal(reader.counts.invalidLines, 3)
  t.equal(reader.counts.jobs.unknown, 1)
})

t.test('a 100 MiB line without a line feed, appended in several writes, keeps memory bounded', async (t) => {
  const path = logIn(t)
  const reader = closing(t, new JobLogReader(path))
  appendFileSync(path, '1700000000|started|0|a\n')
  await reader.readNew()
  const mebibyte = Buffer.alloc(1024 * 1024, 'z')
  const rssBefore = process.memoryUsage().rss
  for (let write = 0; write < 4; write++) {
    for (let i = 0; i < 25; i++) appendFileSync(path, mebibyte)
    const result = await reader.readNew()
    t.same(result, { bytesRead: 25 * 1024 * 1024, lines: 0, restarted: false }, `pass ${write + 1} reads only the new 25 MiB`)
  }
  // The process's RSS high-water mark: holding the line, or even its read chunks until the next
  // GC, would show here.
  const peakGrowth = (process.resourceUsage().maxRSS * 1024 - rssBefore) / 1048576
  t.ok(peakGrowth < 16, `peak RSS grew by ${peakGrowth.toFixed(1)} MiB while reading 100 MiB (< 16 MiB)`)

  appendFileSync(path, '\n1700000100|success|100|a\n')
  t.same(await reader.readNew(), { bytesRead: 26, lines: 2, restarted: false }, 'the dropped line is not read again')
  t.equal(reader.counts.invalidLines, 1, 'and it is one invalid line')
  t.equal(reader.counts.jobs.success, 1)
  t.equal(reader.counts.busy, false)
})

t.test('rotation: a new file under the name is read from the start, counts kept', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n1700000001|success|5|b\n')
  const reader = closing(t, new JobLogReader(path))
  await reader.readNew()
  renameSync(path, `${path}.1`)
  writeFileSync(path, '1700000002|failure|5|c\n1700000003|started|0|d\n1700000004|success|5|d\n')
  t.same(await reader.readNew(), { bytesRead: 69, lines: 3, restarted: true })
  t.same(reader.counts.jobs, { success: 3, failure: 1, cancelled: 0, skipped: 0, unknown: 0 }, 'monotonic')
  appendFileSync(path, '1700000005|success|5|e\n')
  t.same(await reader.readNew(), { bytesRead: 23, lines: 1, restarted: false }, 'then incremental again')
  t.equal(reader.counts.jobs.success, 4)
})

t.test('truncation: a shrunk file is read from the start, counts kept', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n1700000001|success|5|b\n')
  const reader = closing(t, new JobLogReader(path))
  await reader.readNew()
  truncateSync(path, 0)
  t.same(await reader.readNew(), { bytesRead: 0, lines: 0, restarted: true })
  appendFileSync(path, '1700000002|cancelled|5|c\n')
  t.same(await reader.readNew(), { bytesRead: 25, lines: 1, restarted: false })
  t.same(reader.counts.jobs, { success: 2, failure: 0, cancelled: 1, skipped: 0, unknown: 0 })
})

t.test('a file rewritten past the offset between two passes is read from the start', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n')
  const reader = closing(t, new JobLogReader(path))
  await reader.readNew()
  // Same inode (copytruncate and a fast writer): size alone cannot tell.
  writeFileSync(path, '1700000001|failure|5|bb\n1700000002|failure|5|c\n')
  t.same(await reader.readNew(), { bytesRead: 47, lines: 2, restarted: true })
  t.same(reader.counts.jobs, { success: 1, failure: 2, cancelled: 0, skipped: 0, unknown: 0 })
})

t.test('a log deleted and re-created is read from the start', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n1700000001|success|5|b\n')
  const reader = closing(t, new JobLogReader(path))
  await reader.readNew()
  unlinkSync(path)
  t.same(await reader.readNew(), { bytesRead: 0, lines: 0, restarted: false })
  t.equal(reader.counts.jobs.success, 2, 'counts are kept while the log is gone')
  // Longer than before: even if the inode number is reused, it is a new file.
  writeFileSync(path, '1700000002|success|5|c\n1700000003|success|5|d\n1700000004|success|5|e\n')
  t.same(await reader.readNew(), { bytesRead: 69, lines: 3, restarted: false })
  t.equal(reader.counts.jobs.success, 5)
})

t.test('a log replaced by a directory: readNew rejects, counts kept, and it recovers', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n')
  const reader = closing(t, new JobLogReader(path))
  await reader.readNew()
  unlinkSync(path)
  mkdirSync(path)
  await t.rejects(reader.readNew(), { code: 'EISDIR' })
  await t.rejects(reader.readNew(), { code: 'EISDIR' }, 'every pass, until it is fixed')
  t.equal(reader.counts.jobs.success, 1)
  rmdirSync(path)
  // The same size, and likely the same inode number as the first file: still a new file.
  writeFileSync(path, '1700000001|success|5|b\n')
  t.same(await reader.readNew(), { bytesRead: 23, lines: 1, restarted: false })
  t.equal(reader.counts.jobs.success, 2)
})

t.test('a log replaced by a FIFO is refused without blocking', async (t) => {
  const path = logIn(t)
  execFileSync('mkfifo', [path])
  const reader = closing(t, new JobLogReader(path))
  await t.rejects(reader.readNew(), { name: 'RunnerMetricsError', code: 'ERR_JOB_LOG_READ', message: /not a regular file/ })
  t.same(reader.counts, emptyCounts())
})

t.test('an unreadable log rejects with the system error and leaves everything as it was', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n')
  let denied = false
  const { JobLogReader: MockedReader } = await t.mockImport<typeof import('../src/collector/job-log.js')>(
    '../src/collector/job-log.js',
    {
      'node:fs/promises': {
        ...fsPromises,
        open: async (...args: Parameters<typeof fsPromises.open>) => {
          if (denied) throw Object.assign(new Error(`EACCES: permission denied, open '${path}'`), { code: 'EACCES' })
          return fsPromises.open(...args)
        },
      },
    },
  )
  const reader = closing(t, new MockedReader(path))
  await reader.readNew()
  denied = true
  appendFileSync(path, '1700000001|success|5|b\n')
  await t.rejects(reader.readNew(), { code: 'EACCES' })
  t.equal(reader.counts.jobs.success, 1)
  denied = false
  t.same(await reader.readNew(), { bytesRead: 23, lines: 1, restarted: false }, 'resumes where it was')
  t.equal(reader.counts.jobs.success, 2)
})

/** A JobLogReader whose file reads (not the 1-byte line-end check) go through `read`. */
async function readerWithReads(
  t: Test,
  read: (real: fsPromises.FileHandle['read'], buffer: Buffer, length: number, position: number) => Promise<{ bytesRead: number }>,
): Promise<typeof JobLogReader> {
  const { JobLogReader: MockedReader } = await t.mockImport<typeof import('../src/collector/job-log.js')>(
    '../src/collector/job-log.js',
    {
      'node:fs/promises': {
        ...fsPromises,
        open: async (...args: Parameters<typeof fsPromises.open>) => {
          const handle = await fsPromises.open(...args)
          const real = handle.read.bind(handle) as fsPromises.FileHandle['read']
          return Object.assign(Object.create(handle) as fsPromises.FileHandle, {
            read: (buffer: Buffer, offset: number, length: number, position: number) =>
              length === 1 ? real(buffer, offset, length, position) : read(real, buffer, length, position),
            close: () => handle.close(),
          })
        },
      },
    },
  )
  return MockedReader
}

t.test('a read error in the middle of a pass leaves counts and offset as they were', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n')
  let failing = false
  let reads = 0
  let successesWhenFailing: number | undefined
  let reader: JobLogReader | undefined
  const MockedReader = await readerWithReads(t, async (real, buffer, length, position) => {
    if (!failing) return real(buffer, 0, length, position)
    // A short read with one line, counted; then the disk fails.
    if (++reads === 1) return real(buffer, 0, 23, position)
    await new Promise(setImmediate)
    successesWhenFailing = reader!.counts.jobs.success
    throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' })
  })
  reader = closing(t, new MockedReader(path))
  await reader.readNew()
  appendFileSync(path, '1700000001|success|5|b\n1700000002|started|0|c\n')
  failing = true
  await t.rejects(reader.readNew(), { code: 'EIO' })
  t.equal(successesWhenFailing, 2, 'the first line had been counted when the error came')
  t.equal(reader.counts.jobs.success, 1, 'and was taken back')
  t.equal(reader.counts.busy, false)
  t.same(reader.counts.bucketCounts, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
  failing = false
  t.same(await reader.readNew(), { bytesRead: 46, lines: 2, restarted: false }, 'the same bytes are read again')
  t.equal(reader.counts.jobs.success, 2)
  t.equal(reader.counts.busy, true)
})

t.test('a file that shrinks during a pass ends the pass with what was read', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n1700000001|success|5|b\n')
  let shrunk = true
  const MockedReader = await readerWithReads(t, async (real, buffer, length, position) => {
    if (!shrunk) return real(buffer, 0, length, position)
    // The first line, then end of file: as if truncated after the size was taken.
    shrunk = position === 0
    return position === 0 ? real(buffer, 0, 23, position) : { bytesRead: 0 }
  })
  const reader = closing(t, new MockedReader(path))
  t.same(await reader.readNew(), { bytesRead: 23, lines: 1, restarted: false })
  t.same(await reader.readNew(), { bytesRead: 23, lines: 1, restarted: false }, 'the rest, next pass')
  t.equal(reader.counts.jobs.success, 2)
})

t.test('overlapping passes run one after the other', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n'.repeat(1000))
  const reader = closing(t, new JobLogReader(path))
  const [first, second] = await Promise.all([reader.readNew(), reader.readNew()])
  t.same(first, { bytesRead: 23000, lines: 1000, restarted: false })
  t.same(second, { bytesRead: 0, lines: 0, restarted: false })
  t.equal(reader.counts.jobs.success, 1000, 'each line counted once')
  unlinkSync(path)
  mkdirSync(path)
  const failing = reader.readNew()
  const after = reader.readNew()
  await t.rejects(failing, { code: 'EISDIR' })
  await t.rejects(after, { code: 'EISDIR' }, 'a failed pass does not stop the next one')
})

t.test('counts given to the constructor are added to', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n')
  const counts = emptyCounts()
  counts.jobs.success = 10
  const reader = closing(t, new JobLogReader(path, { counts }))
  await reader.readNew()
  t.equal(reader.counts, counts)
  t.equal(counts.jobs.success, 11)
  t.equal(jobTotals(counts), 11)
})

// Rotation without loss: the reader holds the file open between passes and finishes it first.

const openFdsOn = (path: string): number =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(path)
    } catch {
      return false
    }
  }).length

t.test('rotation: lines appended to the old file after the last pass are read before the new file', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n1700000001|success|5|b\n')
  const reader = closing(t, new JobLogReader(path))
  await reader.readNew()
  renameSync(path, `${path}.1`)
  // The runner still holds the old file open and finishes its writes there.
  appendFileSync(`${path}.1`, '1700000002|failure|5|c\n1700000003|cancelled|5|d\n1700000004|skipped|5|e\n')
  writeFileSync(path, '1700000005|success|5|f\n1700000006|unknown|5|g\n')
  t.same(await reader.readNew(), { bytesRead: 71 + 46, lines: 5, restarted: true })
  t.same(reader.counts.jobs, { success: 3, failure: 1, cancelled: 1, skipped: 1, unknown: 1 }, 'every line once')
  t.equal(openFdsOn(`${path}.1`), 0, 'the rotated file is closed')
  appendFileSync(`${path}.1`, '1700000007|success|5|late\n')
  appendFileSync(path, '1700000008|success|5|h\n')
  t.same(await reader.readNew(), { bytesRead: 23, lines: 1, restarted: false }, 'then only the new file')
  t.equal(reader.counts.jobs.success, 4)
})

t.test('a deleted log is read to its end before it is let go', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n')
  const reader = closing(t, new JobLogReader(path))
  await reader.readNew()
  appendFileSync(path, '1700000001|failure|5|b\n')
  unlinkSync(path)
  t.same(await reader.readNew(), { bytesRead: 23, lines: 1, restarted: false })
  t.equal(reader.counts.jobs.failure, 1)
  t.equal(openFdsOn(path), 0, 'the deleted file is closed')
  t.same(await reader.readNew(), { bytesRead: 0, lines: 0, restarted: false })
})

t.test('a rotated file\'s unfinished last line is a line: a job, or an invalid line when over-long', async (t) => {
  const path = logIn(t)
  const reader = closing(t, new JobLogReader(path, { maxLineBytes: 64 }))
  writeFileSync(path, '1700000000|success|5|a\n1700000001|failure|5|b\r')
  t.same(await reader.readNew(), { bytesRead: 46, lines: 1, restarted: false })
  renameSync(path, `${path}.1`)
  writeFileSync(path, `1700000002|success|5|c\n${'x'.repeat(100)}`)
  t.same(await reader.readNew(), { bytesRead: 23 + 123, lines: 2, restarted: true }, 'b, held back, then c')
  t.same(reader.counts.jobs, { success: 2, failure: 1, cancelled: 0, skipped: 0, unknown: 0 })
  unlinkSync(path)
  t.same(await reader.readNew(), { bytesRead: 0, lines: 1, restarted: false }, 'the dropped over-long tail ends with its file')
  t.equal(reader.counts.invalidLines, 1)
})

t.test('a log replaced by a directory or a FIFO: the old file is finished first, then the error', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n')
  const reader = closing(t, new JobLogReader(path))
  await reader.readNew()
  appendFileSync(path, '1700000001|success|5|b\n')
  renameSync(path, `${path}.1`)
  mkdirSync(path)
  await t.rejects(reader.readNew(), { code: 'EISDIR' })
  t.equal(reader.counts.jobs.success, 2, 'the line appended before the swap is counted')
  rmdirSync(path)
  execFileSync('mkfifo', [path])
  await t.rejects(reader.readNew(), { code: 'ERR_JOB_LOG_READ' })
  unlinkSync(path)
  writeFileSync(path, '1700000002|success|5|c\n')
  t.same(await reader.readNew(), { bytesRead: 23, lines: 1, restarted: false })
  t.equal(reader.counts.jobs.success, 3)
})

t.test('a failed read of the rotated file is retried whole next pass', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n')
  let failing = false
  const MockedReader = await readerWithReads(t, async (real, buffer, length, position) => {
    if (failing) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' })
    return real(buffer, 0, length, position)
  })
  const reader = closing(t, new MockedReader(path))
  await reader.readNew()
  appendFileSync(path, '1700000001|failure|5|b\n')
  renameSync(path, `${path}.1`)
  writeFileSync(path, '1700000002|success|5|c\n')
  failing = true
  await t.rejects(reader.readNew(), { code: 'EIO' })
  t.same(reader.counts.jobs, { success: 1, failure: 0, cancelled: 0, skipped: 0, unknown: 0 })
  failing = false
  t.same(await reader.readNew(), { bytesRead: 46, lines: 2, restarted: true })
  t.same(reader.counts.jobs, { success: 2, failure: 1, cancelled: 0, skipped: 0, unknown: 0 })
  appendFileSync(path, '1700000003|failure|5|d\n')
  unlinkSync(path)
  failing = true
  await t.rejects(reader.readNew(), { code: 'EIO' }, 'also when the log was deleted')
  failing = false
  t.same(await reader.readNew(), { bytesRead: 23, lines: 1, restarted: false })
  t.equal(reader.counts.jobs.failure, 2)
})

t.test('a log that cannot be stat\'ed once opened rejects, and its descriptor is closed', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n')
  let closed = 0
  const { JobLogReader: MockedReader } = await t.mockImport<typeof import('../src/collector/job-log.js')>(
    '../src/collector/job-log.js',
    {
      'node:fs/promises': {
        ...fsPromises,
        open: async (...args: Parameters<typeof fsPromises.open>) => {
          const handle = await fsPromises.open(...args)
          return Object.assign(Object.create(handle) as fsPromises.FileHandle, {
            stat: async () => {
              throw Object.assign(new Error('EIO: i/o error, fstat'), { code: 'EIO' })
            },
            close: () => {
              closed++
              return handle.close()
            },
          })
        },
      },
    },
  )
  await t.rejects(closing(t, new MockedReader(path)).readNew(), { code: 'EIO' })
  t.equal(closed, 1)
})

t.test('close() waits for the pass in progress, closes the file, and is safe to call twice', async (t) => {
  const path = logIn(t)
  writeFileSync(path, '1700000000|success|5|a\n'.repeat(50_000))
  const reader = new JobLogReader(path)
  const pass = reader.readNew()
  const closed = reader.close()
  t.same(await pass, { bytesRead: 23 * 50_000, lines: 50_000, restarted: false }, 'the pass finished')
  await closed
  t.equal(openFdsOn(path), 0, 'the file is closed')
  await reader.close()
  await t.rejects(reader.readNew(), { message: `the reader of ${path} is closed` })
  t.equal(reader.counts.jobs.success, 50_000)
})

// Incremental reading of the job log. Each pass reads only the bytes appended since the last one
// (a byte offset in the file the reader holds open), hands every complete line to jobs.ts and
// leaves an unfinished last line for the next pass. The file stays open between passes, so a
// rotation loses nothing: when the path names another file (or nothing), the held file is first
// read to its end, then closed, and the new file is read from its start. A file that shrank is
// read again from the start. The counts are never reset, so the counters they feed stay
// monotonic. State is O(1): an offset, one open file, and at most one held-back line.

import { constants, statSync, type Stats } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import split2 from 'split2'
import { errnoCode, RunnerMetricsError } from '../errors.js'
import { applyEvent, emptyCounts, parseJobLine, type JobCounts } from './jobs.js'

export interface JobLogReadResult {
  /** Bytes read in this pass (from a rotated file's tail and from the file now at the path). */
  bytesRead: number
  /** Complete lines seen in this pass (events, blank, invalid and over-long ones). */
  lines: number
  /** The file shrank or was replaced (rotation, truncation): it was read from the start. */
  restarted: boolean
}

export interface JobLogReaderOptions {
  /** Longer lines (in bytes, without the line ending) are counted as invalid. */
  maxLineBytes?: number
  /** Counts to add to (e.g. kept from an earlier reader); a fresh set by default. */
  counts?: JobCounts
}

const DEFAULT_MAX_LINE_BYTES = 4096
// Large reads keep a cold read of a million-line log well under a second.
const READ_CHUNK_BYTES = 256 * 1024
const NEWLINE = 0x0a
const CR = 0x0d
const NOTHING_READ = Object.freeze({ bytesRead: 0, lines: 0 })

/** The file the reader reads, held open between passes, and its identity. */
interface HeldFile {
  handle: FileHandle
  dev: number
  ino: number
}

type RangeRead = Pick<JobLogReadResult, 'bytesRead' | 'lines'>

export class JobLogReader {
  readonly counts: JobCounts
  readonly #path: string
  readonly #maxLineBytes: number
  // Holding the file open is what lets a pass finish it after a rotation (rename and a new file,
  // or deletion): its bytes stay readable, and its inode number cannot be reused meanwhile.
  #held: HeldFile | undefined
  // Where the next pass starts in the held file: just after a `\n`, or inside an over-long line
  // whose first bytes were already dropped.
  #offset = 0
  #insideOverlongLine = false
  // Reused by every pass, so reading allocates no Buffers and leaves none for the GC to find.
  readonly #buffers: LineBuffers
  #lastPass: Promise<unknown> = Promise.resolve()
  #closed = false
  // The held file's mtime when a pass last read it up to its size.
  #heldMtimeMs = -1

  constructor(path: string, options: JobLogReaderOptions = {}) {
    this.#path = path
    this.#maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES
    this.counts = options.counts ?? emptyCounts()
    this.#buffers = { chunk: Buffer.allocUnsafe(READ_CHUNK_BYTES), held: Buffer.allocUnsafe(this.#maxLineBytes + 1) }
  }

  /**
   * Reads what was appended since the last pass. A missing log is zero new lines; any other
   * failure (EISDIR, EACCES, ...) rejects with the system's error and leaves the counts of the
   * failed read as they were; the next pass reads the same bytes again (or, if something other
   * than a file took the log's place, whatever file comes back from its start).
   */
  readNew(): Promise<JobLogReadResult> {
    if (this.#closed) return Promise.reject(new Error(`the reader of ${this.#path} is closed`))
    // One pass at a time: overlapping passes would count the same bytes twice.
    const pass = this.#lastPass.then(() => this.#readPass())
    this.#lastPass = pass.catch(() => undefined)
    return pass
  }

  /** Lets a pass in progress finish, then closes the held file. Safe to call twice. */
  close(): Promise<void> {
    this.#closed = true
    const closing = this.#lastPass.then(() => this.#release())
    this.#lastPass = closing
    return closing
  }

  async #readPass(): Promise<JobLogReadResult> {
    if (this.#unchangedSinceLastPass()) return { bytesRead: 0, lines: 0, restarted: false }
    const opened = await this.#openPath()
    const held = this.#held
    if (held !== undefined && opened !== undefined && opened.stats.dev === held.dev && opened.stats.ino === held.ino) {
      await opened.handle.close()
      this.#heldMtimeMs = opened.stats.mtimeMs
      return this.#readHeld(held, opened.stats.size)
    }

    // The path names another file, something that is not a file, or nothing: first read what
    // was appended to the held file before it was renamed or deleted, then let it go.
    let drained: RangeRead = NOTHING_READ
    if (held !== undefined) {
      try {
        drained = await this.#drain(held)
      } catch (error) {
        await opened?.handle.close()
        throw error
      }
    }
    if (opened === undefined) return { ...drained, restarted: false }

    const { handle, stats } = opened
    if (!stats.isFile()) {
      try {
        // A directory fails here with the system's own EISDIR.
        if (stats.isDirectory()) await handle.read(Buffer.alloc(1), 0, 1, 0)
      } finally {
        await handle.close()
      }
      throw new RunnerMetricsError(
        'ERR_JOB_LOG_READ',
        `the job log ${this.#path} is not a regular file; make it a plain file the runner appends to`,
      )
    }
    // A log that comes back is a new file, even if it gets the old inode number.
    const file = { handle, dev: stats.dev, ino: stats.ino }
    this.#held = file
    this.#offset = 0
    this.#insideOverlongLine = false
    this.#heldMtimeMs = stats.mtimeMs
    const read = await this.#readRange(file.handle, stats.size, false)
    return { bytesRead: drained.bytesRead + read.bytesRead, lines: drained.lines + read.lines, restarted: held !== undefined }
  }

  /**
   * Between jobs the log does not change: one stat() of the path says so without the
   * thread-pool round trips of a real pass (the collector runs this every interval).
   */
  #unchangedSinceLastPass(): boolean {
    const held = this.#held
    if (held === undefined || this.#insideOverlongLine) return false
    const stats = statSync(this.#path, { throwIfNoEntry: false })
    return (
      stats !== undefined &&
      stats.dev === held.dev &&
      stats.ino === held.ino &&
      stats.size === this.#offset &&
      stats.mtimeMs === this.#heldMtimeMs
    )
  }

  /** The file at the path and its stats, or undefined when there is none (ENOENT). */
  async #openPath(): Promise<{ handle: FileHandle; stats: Stats } | undefined> {
    let handle: FileHandle
    try {
      // O_NONBLOCK: a FIFO put in the log's place must not block a thread-pool thread forever.
      handle = await open(this.#path, constants.O_RDONLY | constants.O_NONBLOCK)
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error
      return undefined
    }
    try {
      return { handle, stats: await handle.stat() }
    } catch (error) {
      await handle.close()
      throw error
    }
  }

  /** Reads what the held file gained; one that shrank or was rewritten is read from its start. */
  async #readHeld(held: HeldFile, size: number): Promise<JobLogReadResult> {
    const restarted = size < this.#offset || !(await this.#lineEndsBeforeOffset(held.handle))
    if (restarted) {
      this.#offset = 0
      this.#insideOverlongLine = false
    }
    return { ...(await this.#readRange(held.handle, size, false)), restarted }
  }

  /**
   * Reads the held file to its end and closes it. Nothing will be appended to it any more, as
   * far as this reader can know, so its unfinished last line is counted as a line.
   */
  async #drain(held: HeldFile): Promise<RangeRead> {
    const { size } = await held.handle.stat()
    const read = await this.#readRange(held.handle, size, true)
    await this.#release()
    return read
  }

  async #release(): Promise<void> {
    const held = this.#held
    this.#held = undefined
    this.#offset = 0
    this.#insideOverlongLine = false
    await held?.handle.close()
  }

  /**
   * Counts the lines in [offset, end) of `handle` and moves the offset past them. On failure
   * the counts are put back as they were and the offset stays, so the same bytes are read again.
   */
  async #readRange(handle: FileHandle, end: number, final: boolean): Promise<RangeRead> {
    const wholeLines = new WholeLines({
      handle,
      start: this.#offset,
      end,
      final,
      buffers: this.#buffers,
      insideOverlongLine: this.#insideOverlongLine,
      counts: this.counts,
    })
    // WholeLines hands over latin1 strings (one char per byte) ending in `\n`: split2 never holds
    // a partial line at the end, and line lengths are byte counts. The mapper counts each line
    // and pushes nothing; resume() lets the stream end all the same.
    const lines = split2('\n', (line: string) => countLine(this.counts, line, this.#maxLineBytes, wholeLines), {
      decodeStrings: false,
    }).resume()
    const saved = copyCounts(this.counts)
    try {
      await pipeline(wholeLines, lines)
    } catch (error) {
      restoreCounts(this.counts, saved)
      throw error
    }
    this.#offset += wholeLines.consumedBytes
    this.#insideOverlongLine = wholeLines.insideOverlongLine
    return { bytesRead: wholeLines.bytesRead, lines: wholeLines.completeLines }
  }

  /**
   * The byte before the offset must still be the `\n` we stopped after; if not, the file was
   * truncated and rewritten past our offset (copytruncate and a fast writer) between two passes.
   */
  async #lineEndsBeforeOffset(handle: FileHandle): Promise<boolean> {
    if (this.#offset === 0 || this.#insideOverlongLine) return true
    const byte = Buffer.alloc(1)
    await handle.read(byte, 0, 1, this.#offset - 1)
    return byte[0] === NEWLINE
  }
}

function countLine(counts: JobCounts, line: string, maxLineBytes: number, wholeLines: WholeLines): void {
  wholeLines.completeLines++
  const contentBytes = line.charCodeAt(line.length - 1) === CR ? line.length - 1 : line.length
  if (contentBytes > maxLineBytes) {
    counts.invalidLines++
    return
  }
  // Job ids stay latin1-decoded here; they are not counted, so that is harmless.
  const parsed = parseJobLine(line)
  if (parsed.kind === 'event') applyEvent(counts, parsed.event)
  else if (parsed.kind === 'invalid') counts.invalidLines++
}

interface LineBuffers {
  /** Where each read lands. */
  chunk: Buffer
  /** The unfinished last line: maxLineBytes + 1 bytes, room for a `\r`. */
  held: Buffer
}

interface WholeLinesOptions {
  handle: FileHandle
  start: number
  end: number
  /** The file is finished: its unfinished last line is a line too. */
  final: boolean
  buffers: LineBuffers
  insideOverlongLine: boolean
  counts: JobCounts
}

/**
 * Reads [start, end) of the file and pushes whole lines only (up to the last `\n` read), as
 * latin1 strings. The unfinished last line is held back, and not consumed: the next pass reads it
 * again, unless the file is final: then it ends the range as a line of its own. A line that
 * outgrows the held buffer is dropped as its bytes stream by and counted once its `\n` arrives
 * (or the final range ends), so memory stays at one chunk plus one line whatever the log holds.
 * Each chunk is fully copied out before the next read, which is what makes reusing the buffers
 * safe.
 */
class WholeLines extends Readable {
  bytesRead = 0
  /** Bytes pushed or dropped: where the next pass may start. */
  consumedBytes = 0
  completeLines = 0
  insideOverlongLine: boolean
  readonly #handle: FileHandle
  readonly #end: number
  readonly #chunk: Buffer
  readonly #held: Buffer
  readonly #counts: JobCounts
  #final: boolean
  #position: number
  #heldBytes = 0

  constructor(options: WholeLinesOptions) {
    super({ objectMode: true, highWaterMark: 1 })
    this.#handle = options.handle
    this.#position = options.start
    this.#end = options.end
    this.#final = options.final
    this.#chunk = options.buffers.chunk
    this.#held = options.buffers.held
    this.insideOverlongLine = options.insideOverlongLine
    this.#counts = options.counts
  }

  override _read(): void {
    this.#nextLines().then(
      (lines) => this.push(lines),
      (error: Error) => this.destroy(error),
    )
  }

  /** The next run of whole lines, or null at the end of the range. */
  async #nextLines(): Promise<string | null> {
    while (this.#position < this.#end) {
      const length = Math.min(this.#chunk.length, this.#end - this.#position)
      const { bytesRead } = await this.#handle.read(this.#chunk, 0, length, this.#position)
      // The file shrank under us: what is gone is the next pass's business.
      if (bytesRead === 0) break
      this.#position += bytesRead
      this.bytesRead += bytesRead
      const lines = this.#take(this.#chunk.subarray(0, bytesRead))
      if (lines !== '') return lines
    }
    return this.#final ? this.#finish() : null
  }

  /** The end of a final range: what is left of its last line is one more line. */
  #finish(): string | null {
    this.#final = false
    if (this.insideOverlongLine) {
      this.insideOverlongLine = false
      this.completeLines++
      this.#counts.invalidLines++
      return null
    }
    if (this.#heldBytes === 0) return null
    const line = `${this.#held.toString('latin1', 0, this.#heldBytes)}\n`
    this.consumedBytes += this.#heldBytes
    this.#heldBytes = 0
    return line
  }

  #take(chunk: Buffer): string {
    let start = 0
    if (this.insideOverlongLine) {
      const newline = chunk.indexOf(NEWLINE)
      if (newline === -1) {
        this.consumedBytes += chunk.length
        return ''
      }
      this.consumedBytes += newline + 1
      this.insideOverlongLine = false
      this.completeLines++
      this.#counts.invalidLines++
      start = newline + 1
    }

    let lines = ''
    const lastNewline = chunk.lastIndexOf(NEWLINE)
    if (lastNewline >= start) {
      lines = this.#held.toString('latin1', 0, this.#heldBytes) + chunk.toString('latin1', start, lastNewline + 1)
      this.consumedBytes += this.#heldBytes + lastNewline + 1 - start
      this.#heldBytes = 0
      start = lastNewline + 1
    }
    this.#hold(chunk, start)
    return lines
  }

  #hold(chunk: Buffer, start: number): void {
    const heldBytes = this.#heldBytes + chunk.length - start
    if (heldBytes > this.#held.length) {
      this.consumedBytes += heldBytes
      this.#heldBytes = 0
      this.insideOverlongLine = true
    } else {
      chunk.copy(this.#held, this.#heldBytes, start)
      this.#heldBytes = heldBytes
    }
  }
}

function copyCounts(counts: JobCounts): JobCounts {
  return { ...counts, jobs: { ...counts.jobs }, bucketCounts: [...counts.bucketCounts] }
}

/** Puts saved values back into the same objects, for callers that hold a reference to them. */
function restoreCounts(counts: JobCounts, saved: JobCounts): void {
  const { jobs, bucketCounts, ...scalars } = saved
  Object.assign(counts, scalars)
  Object.assign(counts.jobs, jobs)
  for (let i = 0; i < bucketCounts.length; i++) counts.bucketCounts[i] = bucketCounts[i]
}

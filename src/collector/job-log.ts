// Incremental reading of the job log. Each pass reads only the bytes appended since the last one
// (a byte offset in a file known by dev + inode), hands every complete line to jobs.ts and leaves
// an unfinished last line for the next pass. A file that shrank or was replaced is read again
// from the start; the counts are never reset, so the counters they feed stay monotonic.
// State is O(1): an offset, a file identity, and at most one held-back line.

import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import split2 from 'split2'
import { errnoCode, RunnerMetricsError } from '../errors.js'
import { applyEvent, emptyCounts, parseJobLine, type JobCounts } from './jobs.js'

export interface JobLogReadResult {
  /** Bytes read from the file in this pass. */
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

export class JobLogReader {
  readonly counts: JobCounts
  readonly #path: string
  readonly #maxLineBytes: number
  // Where the next pass starts: just after a `\n`, or inside an over-long line whose first
  // bytes were already dropped.
  #offset = 0
  #insideOverlongLine = false
  #file: { dev: number; ino: number } | undefined
  // Reused by every pass, so reading allocates no Buffers and leaves none for the GC to find.
  readonly #buffers: LineBuffers
  #lastPass: Promise<unknown> = Promise.resolve()

  constructor(path: string, options: JobLogReaderOptions = {}) {
    this.#path = path
    this.#maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES
    this.counts = options.counts ?? emptyCounts()
    this.#buffers = { chunk: Buffer.allocUnsafe(READ_CHUNK_BYTES), held: Buffer.allocUnsafe(this.#maxLineBytes + 1) }
  }

  /**
   * Reads what was appended since the last pass. A missing log is zero new lines; any other
   * failure (EISDIR, EACCES, ...) rejects with the system's error and leaves the counts as they
   * were; the next pass reads the same bytes again (or, if something other than a file took the
   * log's place, whatever file comes back from its start).
   */
  readNew(): Promise<JobLogReadResult> {
    // One pass at a time: overlapping passes would count the same bytes twice.
    const pass = this.#lastPass.then(() => this.#readPass())
    this.#lastPass = pass.catch(() => undefined)
    return pass
  }

  async #readPass(): Promise<JobLogReadResult> {
    let handle: FileHandle
    try {
      // O_NONBLOCK: a FIFO put in the log's place must not block a thread-pool thread forever.
      handle = await open(this.#path, constants.O_RDONLY | constants.O_NONBLOCK)
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error
      this.#forgetFile()
      return { bytesRead: 0, lines: 0, restarted: false }
    }
    try {
      return await this.#readOpenFile(handle)
    } finally {
      await handle.close()
    }
  }

  async #readOpenFile(handle: FileHandle): Promise<JobLogReadResult> {
    const stats = await handle.stat()
    if (!stats.isFile()) {
      // Our file is gone from this path, as if deleted: a file put back is a new one.
      this.#forgetFile()
      // A directory fails here with the system's own EISDIR.
      if (stats.isDirectory()) await handle.read(Buffer.alloc(1), 0, 1, 0)
      throw new RunnerMetricsError(
        'ERR_JOB_LOG_READ',
        `the job log ${this.#path} is not a regular file; make it a plain file the runner appends to`,
      )
    }

    const restarted =
      this.#file !== undefined &&
      (stats.dev !== this.#file.dev ||
        stats.ino !== this.#file.ino ||
        stats.size < this.#offset ||
        !(await this.#lineEndsBeforeOffset(handle)))
    const start = restarted ? 0 : this.#offset
    const wholeLines = new WholeLines({
      handle,
      start,
      end: stats.size,
      buffers: this.#buffers,
      insideOverlongLine: !restarted && this.#insideOverlongLine,
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

    this.#offset = start + wholeLines.consumedBytes
    this.#insideOverlongLine = wholeLines.insideOverlongLine
    this.#file = { dev: stats.dev, ino: stats.ino }
    return { bytesRead: wholeLines.bytesRead, lines: wholeLines.completeLines, restarted }
  }

  /** A log that comes back is a new file, even if it gets the old inode number. */
  #forgetFile(): void {
    this.#offset = 0
    this.#insideOverlongLine = false
    this.#file = undefined
  }

  /**
   * The byte before the offset must still be the `\n` we stopped after; if not, the file was
   * truncated and rewritten past our offset (copytruncate, or a deleted log whose inode number
   * was reused) between two passes.
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
  buffers: LineBuffers
  insideOverlongLine: boolean
  counts: JobCounts
}

/**
 * Reads [start, end) of the file and pushes whole lines only (up to the last `\n` read), as
 * latin1 strings. The unfinished last line is held back, and not consumed: the next pass reads it
 * again. A line that outgrows the held buffer is dropped as its bytes stream by and counted once
 * its `\n` arrives, so memory stays at one chunk plus one line whatever the log holds. Each
 * chunk is fully copied out before the next read, which is what makes reusing the buffers safe.
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
  #position: number
  #heldBytes = 0

  constructor(options: WholeLinesOptions) {
    super({ objectMode: true, highWaterMark: 1 })
    this.#handle = options.handle
    this.#position = options.start
    this.#end = options.end
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
    return null
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

// The metrics file's current version. Every request stats the path (one syscall); only when
// (dev, ino, size, mtime) differs from the cached version is the file opened and read again.
// The collector replaces the file by rename, so a request that arrives after a rename completed
// stats the new inode and gets the new content, and one read by fd can never mix two versions.
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs'
import { errnoCode } from '../errors.js'
import { createOnceLog, type Log } from '../log.js'
import { MetricsReply, unavailableReply, type Reply } from './response.js'

export interface SnapshotOptions {
  path: string
  maxFileBytes: number
  /** Told once when the file becomes unavailable, and again only after it recovered. */
  log: Log
}

export interface Snapshot {
  /** The reply for the file as it is now: its 200, or a 503 that says why it cannot be served. */
  current(): Reply
  /** Forgets the cached version and closes its file descriptor. */
  close(): void
}

interface Version {
  readonly fd: number
  readonly dev: number
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
  readonly reply: Reply
}

// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK
const LOG_KIND = 'metrics-file'

export function createSnapshot({ path, maxFileBytes, log }: SnapshotOptions): Snapshot {
  const once = createOnceLog(log)
  let cached: Version | undefined
  let refusal: { readonly reason: string; readonly reply: Reply } | undefined

  function current(): Reply {
    let stats: Stats | undefined
    try {
      stats = statSync(path, { throwIfNoEntry: false })
    } catch (error) {
      return refuse(`metrics file ${path} cannot be read (${errnoCode(error)})`)
    }
    if (stats === undefined) return refuse(`metrics file ${path} is not available yet (ENOENT)`)
    if (cached !== undefined && isSameVersion(stats, cached)) return cached.reply
    return load()
  }

  function load(): Reply {
    let fd: number
    try {
      fd = openSync(path, OPEN_FLAGS)
    } catch (error) {
      return refuse(`metrics file ${path} cannot be read (${errnoCode(error)})`)
    }
    let reply: Reply
    try {
      reply = read(fd)
    } catch (error) {
      reply = refuse(`metrics file ${path} cannot be read (${errnoCode(error)})`)
    }
    if (cached?.fd !== fd) closeSync(fd)
    return reply
  }

  /** Reads the file open on `fd` and makes it the cached version, or refuses it. */
  function read(fd: number): Reply {
    // The cache is keyed on what we opened: if the file was replaced between the stat in
    // current() and the open, the next request's stat sees this newer version and reuses it.
    const stats = fstatSync(fd)
    if (!stats.isFile()) return refuse(`metrics file ${path} is not a regular file`)
    if (stats.size > maxFileBytes) {
      return refuse(`metrics file ${path} is larger than ${maxFileBytes} bytes (${stats.size})`)
    }
    const body = readFully(fd, stats.size)
    // A zero-byte file is what a writer that died half-way or a full disk leaves behind, not
    // a valid set of metrics: say so instead of serving an empty 200 that looks healthy.
    if (body.length === 0) return refuse(`metrics file ${path} is empty`)
    const reply = new MetricsReply(body)
    forget()
    // Holding the fd open keeps its inode allocated, so no later file can reuse the inode
    // number (ext4 reuses a freed one at once) and be taken for this cached version.
    cached = { fd, dev: stats.dev, ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs, reply }
    refusal = undefined
    once.clear(LOG_KIND)
    return reply
  }

  function refuse(reason: string): Reply {
    forget()
    once.once(LOG_KIND, `${reason}; answering 503 until it is fixed`)
    if (refusal?.reason !== reason) refusal = { reason, reply: unavailableReply(reason) }
    return refusal.reply
  }

  function forget(): void {
    if (cached === undefined) return
    closeSync(cached.fd)
    cached = undefined
  }

  return { current, close: forget }
}

function isSameVersion(stats: Stats, version: Version): boolean {
  return (
    stats.ino === version.ino &&
    stats.mtimeMs === version.mtimeMs &&
    stats.size === version.size &&
    stats.dev === version.dev
  )
}

/** Reads `size` bytes from the start of `fd`, or fewer if the file shrank meanwhile. */
function readFully(fd: number, size: number): Buffer {
  const body = Buffer.allocUnsafe(size)
  let filled = 0
  while (filled < size) {
    const read = readSync(fd, body, filled, size - filled, filled)
    if (read === 0) return body.subarray(0, filled)
    filled += read
  }
  return body
}

// Replaces a file so readers see the old content or the new, never a mix: a temp file in the
// same directory (so rename stays on one filesystem), write, fsync, rename (write-file-atomic).

import { closeSync, fsyncSync, ftruncateSync, openSync, readdirSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { threadId } from 'node:worker_threads'
import { errnoCode } from './errors.js'

let sequence = 0

/** Temp names are unique per process, thread and write, and never end in `.prom`. */
function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${threadId}.${sequence++}.tmp`)
}

export interface AtomicWriteResult {
  /**
   * True when the rename failed with EBUSY (the target is a bind-mounted single file, which
   * cannot be replaced) and the content was rewritten in place instead.
   */
  inPlace: boolean
}

/**
 * Synchronous inside: the collector calls this from its own worker thread, where blocking is
 * harmless and each async step would be a thread-pool round trip (that is most of a collection's
 * CPU time when the job log has not changed).
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<AtomicWriteResult> {
  const temp = tempPathFor(target)
  let renamed = false
  try {
    const fd = openSync(temp, 'wx', 0o644)
    try {
      writeFileSync(fd, data)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    try {
      renameSync(temp, target)
      renamed = true
      return { inPlace: false }
    } catch (error) {
      if (errnoCode(error) !== 'EBUSY') throw error
    }
    writeInPlace(target, data)
    return { inPlace: true }
  } finally {
    if (!renamed) rmSync(temp, { force: true })
  }
}

function writeInPlace(target: string, data: string | Uint8Array): void {
  const fd = openSync(target, 'r+')
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data
    writeSync(fd, bytes, 0, bytes.length, 0)
    ftruncateSync(fd, bytes.length)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/**
 * Removes the temp files this process left next to `target` (a write cut short by shutdown or
 * a killed worker) and nothing else: only names carrying this process's pid.
 */
export function removeOwnTempFiles(target: string, pid: number = process.pid): string[] {
  const directory = dirname(target)
  const prefix = `.${basename(target)}.${pid}.`
  let names: string[]
  try {
    names = readdirSync(directory)
  } catch {
    return []
  }
  const removed = names.filter((name) => name.startsWith(prefix) && name.endsWith('.tmp'))
  for (const name of removed) rmSync(join(directory, name), { force: true })
  return removed
}

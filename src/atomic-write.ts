// Replaces a file so readers see the old content or the new, never a mix: a temp file in the
// same directory (so rename stays on one filesystem), write, fsync, rename (write-file-atomic).

import { promises as fs, readdirSync, rmSync } from 'node:fs'
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

export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<AtomicWriteResult> {
  const temp = tempPathFor(target)
  let renamed = false
  try {
    const handle = await fs.open(temp, 'wx', 0o644)
    try {
      await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }
    try {
      await fs.rename(temp, target)
      renamed = true
      return { inPlace: false }
    } catch (error) {
      if (errnoCode(error) !== 'EBUSY') throw error
    }
    await writeInPlace(target, data)
    return { inPlace: true }
  } finally {
    if (!renamed) await fs.rm(temp, { force: true })
  }
}

async function writeInPlace(target: string, data: string | Uint8Array): Promise<void> {
  const handle = await fs.open(target, 'r+')
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data
    await handle.write(bytes, 0, bytes.length, 0)
    await handle.truncate(bytes.length)
    await handle.sync()
  } finally {
    await handle.close()
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

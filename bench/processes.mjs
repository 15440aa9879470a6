// Every process and temp dir the bench starts is owned here, so each one is stopped and removed
// on success, on failure and on SIGINT/SIGTERM (and, as a last resort, killed on `exit`).

import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const live = new Map() // pid -> { child, group }
const tempDirs = new Set()

process.on('exit', () => {
  for (const [pid, { group }] of live) kill(pid, group, 'SIGKILL')
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})

/**
 * Spawns a tracked child in its own process group (`detached`), so a terminal's Ctrl-C reaches
 * only the bench, which then stops the child in order; `group: true` stops the whole group
 * (a shell loop and the processes it forks).
 */
export function spawnTracked(command, args, { group = false, ...options } = {}) {
  const child = spawn(command, args, { detached: true, ...options })
  if (child.pid === undefined) {
    // Spawning failed; the child emits 'error', which its starter reports.
    child.exited = Promise.resolve({ code: null, signal: null })
    return child
  }
  live.set(child.pid, { child, group })
  child.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child.pid)
      resolve({ code, signal })
    })
  })
  return child
}

/** Sends `signal`, waits up to `graceMs` for the exit, then SIGKILLs (the group if it is one). */
export async function stopTracked(child, { signal = 'SIGTERM', graceMs = 3000 } = {}) {
  const entry = live.get(child.pid)
  if (!entry) return child.exited
  kill(child.pid, entry.group, signal)
  let timer
  const timeout = new Promise((resolve) => {
    timer = setTimeout(resolve, graceMs, 'timeout')
  })
  const first = await Promise.race([child.exited, timeout])
  clearTimeout(timer)
  if (first === 'timeout') {
    kill(child.pid, entry.group, 'SIGKILL')
    return { ...(await child.exited), forced: true }
  }
  // The leader is gone; make sure nothing it forked outlives it.
  if (entry.group) kill(child.pid, true, 'SIGKILL')
  return first
}

export async function stopAll() {
  await Promise.all([...live.values()].map(({ child }) => stopTracked(child, { graceMs: 1500 })))
}

export function makeTempDir(prefix = 'runner-metrics-bench-') {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  // mkdtemp makes it 0700; nginx's worker drops to an unprivileged user and must reach the
  // metrics file inside. Nothing in here is secret.
  chmodSync(dir, 0o755)
  tempDirs.add(dir)
  return dir
}

export function removeTempDirs() {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  tempDirs.clear()
}

export function liveCount() {
  return live.size
}

function kill(pid, group, signal) {
  try {
    process.kill(group ? -pid : pid, signal)
  } catch {
    // Already gone.
  }
}

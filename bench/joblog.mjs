// A realistic job log, the same bytes on every run (seeded): one runner working jobs back to
// back, each a `started` line and a finish line, with mixed results, the status synonyms the
// runner hooks write, decimal durations and the odd empty job_id.

import { closeSync, openSync, writeSync } from 'node:fs'

const firstEpoch = 1_760_000_000

/** Writes `lines` lines (a `started` line and a finish line per job) to `path`; flag 'a' appends. */
export function writeJobLog(path, { lines, seed = 1, flag = 'w', startEpoch = firstEpoch, jobNumber = 1 }) {
  const fd = openSync(path, flag)
  try {
    const next = jobLines({ seed, startEpoch, jobNumber })
    let batch = []
    for (let i = 0; i < lines; i++) {
      batch.push(next())
      if (batch.length === 10_000) {
        writeSync(fd, batch.join(''))
        batch = []
      }
    }
    if (batch.length > 0) writeSync(fd, batch.join(''))
  } finally {
    closeSync(fd)
  }
}

/** A line source: each call returns the next line, `\n` included. */
export function jobLines({ seed = 1, startEpoch = firstEpoch, jobNumber = 1 } = {}) {
  const random = mulberry32(seed)
  let epoch = startEpoch
  let job = jobNumber
  let pending = null
  return () => {
    if (pending !== null) {
      const line = pending
      pending = null
      return line
    }
    epoch += 5 + Math.floor(random() * 600) // idle between jobs
    const id = random() < 0.02 ? '' : `${9_000_000 + job}-${1 + Math.floor(random() * 3)}`
    const duration = jobDuration(random)
    const started = `${epoch}|started|0|${id}\n`
    epoch += Math.ceil(duration)
    pending = `${epoch}|${jobStatus(random)}|${duration}|${id}\n`
    job += 1
    return started
  }
}

/** Mostly short jobs, some builds of several minutes, a few long ones; decimals sometimes. */
function jobDuration(random) {
  const r = random()
  const seconds = r < 0.6 ? 5 + random() * 115 : r < 0.9 ? 120 + random() * 780 : 900 + random() * 6300
  return random() < 0.3 ? Math.round(seconds * 10) / 10 : Math.round(seconds)
}

function jobStatus(random) {
  const r = random()
  if (r < 0.55) return 'success'
  if (r < 0.7) return 'completed'
  if (r < 0.78) return 'Succeeded'
  if (r < 0.88) return 'failure'
  if (r < 0.91) return 'failed'
  if (r < 0.95) return 'cancelled'
  if (r < 0.96) return 'canceled'
  if (r < 0.98) return 'skipped'
  return 'unknown'
}

// A small, fast, seedable PRNG (public domain), so every run generates the same log.
function mulberry32(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

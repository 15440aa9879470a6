// The process_* figures, named and measured as prom-client does. They describe the whole
// process, also when read from the collector's worker thread: process.cpuUsage(), rss() and
// process.uptime() are process-wide there too.

import { readdirSync, readFileSync } from 'node:fs'

export interface ProcessStats {
  cpuSecondsTotal: number
  residentMemoryBytes: number
  startTimeSeconds: number
  /** Undefined where /proc is missing or unreadable: the series is then left out. */
  openFds: number | undefined
  maxFds: number | undefined
}

const START_TIME_SECONDS = Math.round(Date.now() / 1000 - process.uptime())

export function readProcessStats(): ProcessStats {
  const cpu = process.cpuUsage()
  return {
    cpuSecondsTotal: (cpu.user + cpu.system) / 1e6,
    residentMemoryBytes: process.memoryUsage.rss(),
    startTimeSeconds: START_TIME_SECONDS,
    openFds: countOpenFds(),
    maxFds: readMaxFds(),
  }
}

function countOpenFds(): number | undefined {
  try {
    // The listing includes the descriptor used to read the directory itself.
    return readdirSync('/proc/self/fd').length - 1
  } catch {
    // No /proc, or no descriptor left to read it with (EMFILE): leave the series out.
    return undefined
  }
}

function readMaxFds(): number | undefined {
  let limits: string
  try {
    limits = readFileSync('/proc/self/limits', 'utf8')
  } catch {
    return undefined
  }
  // The soft limit, which is what open() runs into; "unlimited" does not match and is left out.
  const match = /^Max open files +(\d+) /m.exec(limits)
  return match === null ? undefined : Number(match[1])
}

// Logging is one line per event on stderr, prefixed with the program name. No per-request logs.

export type Log = (message: string) => void

export const stderrLog: Log = (message) => {
  process.stderr.write(`runner-metrics: ${message}\n`)
}

/**
 * Logs the first occurrence of each kind of problem and stays quiet about repeats until
 * `clear(kind)` says the problem went away, so a failure that repeats every interval does not
 * flood the container log.
 */
export function createOnceLog(log: Log): { once(kind: string, message: string): void; clear(kind: string): void } {
  const seen = new Set<string>()
  return {
    once(kind, message) {
      if (seen.has(kind)) return
      seen.add(kind)
      log(message)
    },
    clear(kind) {
      seen.delete(kind)
    },
  }
}

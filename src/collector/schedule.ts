// A timer that runs a task at fixed deadlines (start + k * interval) rather than "interval after
// the last run finished", so the time a collection takes never accumulates as drift: after an
// hour at 30 s the runs are still on their 30 s grid. Runs never overlap; a deadline missed
// because a run overran is skipped, not queued.

export interface Clock {
  now(): number
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

export interface Schedule {
  stop(): void
}

/** Runs `task` now and then at every later deadline until `stop()`. */
export function startSchedule(intervalMs: number, task: () => Promise<void>, clock: Clock = systemClock): Schedule {
  const start = clock.now()
  let deadlineIndex = 0
  let timer: unknown
  let stopped = false

  const tick = (): void => {
    timer = undefined
    void task().finally(() => {
      if (stopped) return
      const now = clock.now()
      deadlineIndex = Math.max(deadlineIndex + 1, Math.floor((now - start) / intervalMs) + 1)
      timer = clock.setTimeout(tick, start + deadlineIndex * intervalMs - now)
    })
  }

  tick()
  return {
    stop() {
      stopped = true
      if (timer !== undefined) clock.clearTimeout(timer)
      timer = undefined
    },
  }
}

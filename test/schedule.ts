import t from 'tap'
import { startSchedule, systemClock, type Clock } from '../src/collector/schedule.js'

/** A clock whose time moves only when the test says, so an hour of 30 s intervals runs at once. */
function manualClock(): Clock & { advance(ms: number): Promise<void>; pending(): number } {
  let now = 0
  let timers: { at: number; callback: () => void; id: number }[] = []
  let nextId = 0
  return {
    now: () => now,
    setTimeout(callback, ms) {
      const timer = { at: now + ms, callback, id: nextId++ }
      timers.push(timer)
      return timer.id
    },
    clearTimeout(id) {
      timers = timers.filter((timer) => timer.id !== id)
    },
    pending: () => timers.length,
    async advance(ms) {
      const end = now + ms
      // each pass first lets pending promise chains (a run's end re-arming its timer) settle
      for (;;) {
        await new Promise((resolve) => setImmediate(resolve))
        timers.sort((a, b) => a.at - b.at)
        const next = timers[0]
        if (next === undefined || next.at > end) break
        timers.shift()
        now = next.at
        next.callback()
      }
      now = end
    },
  }
}

t.test('runs at once, then on fixed deadlines: an hour at 30 s does not drift', async (t) => {
  const clock = manualClock()
  const runs: number[] = []
  // every run takes 700 ms of clock time: a timer armed "interval after each run" would drift
  // 120 * 0.7 s = 84 s in an hour, far outside the +-2 s the issue allows
  const schedule = startSchedule(30_000, async () => {
    runs.push(clock.now())
    await new Promise<void>((resolve) => clock.setTimeout(resolve, 700))
  }, clock)
  await clock.advance(3_601_000)
  schedule.stop()
  t.equal(runs.length, 121, 'one at start and one per 30 s')
  for (const [k, at] of runs.entries()) t.equal(at, k * 30_000, `run ${k} on its deadline`)
  t.equal(clock.pending(), 0, 'stop() clears the pending timer')
})

t.test('a run that takes time does not push the next deadlines', async (t) => {
  const clock = manualClock()
  const runs: number[] = []
  let busyUntil = 0
  const schedule = startSchedule(1000, async () => {
    runs.push(clock.now())
    busyUntil = clock.now() + 400
    while (clock.now() < busyUntil) await new Promise<void>((resolve) => clock.setTimeout(resolve, busyUntil - clock.now()))
  }, clock)
  await clock.advance(10_000)
  schedule.stop()
  t.same(runs, [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000])
})

t.test('a run longer than the interval skips the missed deadlines instead of queueing them', async (t) => {
  const clock = manualClock()
  const runs: number[] = []
  const schedule = startSchedule(1000, async () => {
    runs.push(clock.now())
    if (runs.length === 2) await new Promise<void>((resolve) => clock.setTimeout(resolve, 2500))
  }, clock)
  await clock.advance(6000)
  schedule.stop()
  t.same(runs, [0, 1000, 4000, 5000, 6000], 'the run from 1000 ended at 3500: 2000 and 3000 are skipped')
})

t.test('stop() during a run: no run after it', async (t) => {
  const clock = manualClock()
  let runs = 0
  let release!: () => void
  const schedule = startSchedule(1000, async () => {
    runs++
    await new Promise<void>((resolve) => (release = resolve))
  }, clock)
  schedule.stop()
  release()
  await clock.advance(5000)
  t.equal(runs, 1)
  t.equal(clock.pending(), 0)
})

t.test('the system clock keeps a 20 ms grid within a few ms over 25 runs', async (t) => {
  const times: number[] = []
  const start = performance.now()
  await new Promise<void>((resolve) => {
    const schedule = startSchedule(20, async () => {
      times.push(performance.now() - start)
      // each run takes ~5 ms of real time: with a naive timer that is 125 ms of drift
      const until = performance.now() + 5
      while (performance.now() < until);
      if (times.length === 25) {
        schedule.stop()
        resolve()
      }
    }, systemClock)
  })
  const last = times[24] as number
  // libuv keeps loop time in whole milliseconds, so a timer may fire up to 1 ms early
  t.ok(last >= 478, `the 25th run is not early (${last.toFixed(1)} ms)`)
  t.ok(last < 480 + 60, `the 25th run is near 480 ms, not drifted by 125 ms (${last.toFixed(1)} ms)`)
})

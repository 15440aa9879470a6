import { once } from 'node:events'
import { existsSync, mkdirSync, readFileSync, watch, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MessageChannel } from 'node:worker_threads'
import t from 'tap'
import type { CollectorSettings, WorkerMessage } from '../src/collector/messages.js'
import { isSupervisorMessage, isWorkerMessage } from '../src/collector/messages.js'
import { runCollectorLoop, type SupervisorPort } from '../src/collector/worker-loop.js'

function settings(dir: string, intervalSeconds: number): CollectorSettings {
  return { jobsLog: join(dir, 'jobs.log'), metricsFile: join(dir, 'metrics.prom'), runnerName: 'w', runnerType: 'standard', intervalSeconds, startedAtMs: Date.now() }
}

t.test('ready after the first collection, then a collection per interval, until stop', async (t) => {
  const dir = t.testdir({ 'jobs.log': '1700000000|success|1|a\n' })
  const { port1, port2 } = new MessageChannel()
  t.teardown(() => port2.close())
  runCollectorLoop(settings(dir, 0.05), port1)
  const [first] = (await once(port2, 'message')) as [WorkerMessage]
  t.same(first, { type: 'ready' })
  t.ok(existsSync(join(dir, 'metrics.prom')), 'the first scrape already has data')

  // each collection renames a new file into place
  const watcher = watch(dir)
  t.teardown(() => watcher.close())
  let renames = 0
  await new Promise<void>((resolve) => watcher.on('change', (_type, name) => {
    if (name === 'metrics.prom' && ++renames === 3) resolve()
  }))
  t.equal(renames, 3)

  port2.postMessage({ type: 'stop' })
  await once(port2, 'close')
  t.pass('the loop closed its port after stop: the worker thread can exit')
})

t.test('a collect message collects at once, off the schedule', async (t) => {
  const dir = t.testdir({})
  const { port1, port2 } = new MessageChannel()
  t.teardown(() => port2.close())
  runCollectorLoop(settings(dir, 3600), port1)
  await once(port2, 'message')
  const watcher = watch(dir)
  t.teardown(() => watcher.close())
  const renamed = new Promise<void>((resolve) => watcher.on('change', (_type, name) => name === 'metrics.prom' && resolve()))
  writeFileSync(join(dir, 'jobs.log'), '1700000000|success|1|a\n')
  port2.postMessage({ type: 'collect' })
  await renamed
  t.match(readFileSync(join(dir, 'metrics.prom'), 'utf8'), /status="success"} 1\n/, 'an hour before the next deadline')
  port2.postMessage({ type: 'collect' })
  port2.postMessage({ type: 'stop' })
  await once(port2, 'close')
})

t.test('collector problems are sent as log messages', async (t) => {
  const dir = t.testdir({})
  mkdirSync(join(dir, 'jobs.log'))
  const { port1, port2 } = new MessageChannel()
  t.teardown(() => port2.close())
  const messages: WorkerMessage[] = []
  port2.on('message', (message: WorkerMessage) => messages.push(message))
  runCollectorLoop(settings(dir, 30), port1)
  await new Promise<void>((resolve) => port2.on('message', (m: WorkerMessage) => m.type === 'ready' && resolve()))
  t.match(messages[0], { type: 'log', message: /cannot read job log .* \(EISDIR\)/ })
  t.same(messages[1], { type: 'ready' })
  port2.postMessage({ type: 'stop' })
  await once(port2, 'close')
})

t.test('an unknown message from the supervisor is a bug: it throws', async (t) => {
  const dir = t.testdir({})
  let listener: ((message: unknown) => void) | undefined
  const posted: WorkerMessage[] = []
  let closed = false
  let ready!: () => void
  const isReady = new Promise<void>((resolve) => (ready = resolve))
  const port: SupervisorPort = {
    postMessage: (message) => {
      posted.push(message)
      if (message.type === 'ready') ready()
    },
    on: (_event, callback) => (listener = callback),
    close: () => (closed = true),
  }
  runCollectorLoop(settings(dir, 30), port)
  await isReady
  t.throws(() => listener?.({ type: 'reload' }), { message: 'collector worker got an unknown message: {"type":"reload"}' })
  t.notOk(closed)
  // collections asked for just before a stop are skipped, not run after it
  const postedBefore = posted.length
  listener?.({ type: 'collect' })
  listener?.({ type: 'collect' })
  listener?.({ type: 'stop' })
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(closed)
  t.equal(posted.length, postedBefore, 'nothing collected (or logged) after the stop')
})

t.test('message guards', async (t) => {
  t.ok(isWorkerMessage({ type: 'ready' }))
  t.ok(isWorkerMessage({ type: 'log', message: 'x' }))
  t.notOk(isWorkerMessage({ type: 'log', message: 1 }))
  t.notOk(isWorkerMessage({ type: 'other' }))
  t.notOk(isWorkerMessage(null))
  t.notOk(isWorkerMessage('ready'))
  t.ok(isSupervisorMessage({ type: 'stop' }))
  t.ok(isSupervisorMessage({ type: 'collect' }))
  t.notOk(isSupervisorMessage({ type: 'go' }))
  t.notOk(isSupervisorMessage(null))
  t.notOk(isSupervisorMessage(7))
})

// The commands: a checked invocation -> `serve` or `collect`. The only module that wires the
// endpoint, the collector and the process together; exit codes: 0 ok, 1 failure, 2 usage.

import { accessSync, constants, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { removeOwnTempFiles } from './atomic-write.js'
import type { CollectorSettings } from './collector/messages.js'
import { CollectorSupervisor } from './collector/supervisor.js'
import { HELP, parseInvocation, type Config } from './config.js'
import { errnoCode, RunnerMetricsError } from './errors.js'
import { startHeapTrim } from './heap-trim.js'
import type { Log } from './log.js'
import { createEndpoint } from './server/endpoint.js'
import { VERSION } from './version.js'

const EXIT_OK = 0
const EXIT_FAILURE = 1
const EXIT_USAGE = 2

/** Limits the issue fixes; options only where an operator has a reason to change them. */
const ENDPOINT_LIMITS = { headTimeoutMs: 5000, maxHeadBytes: 8192, lingerMs: 5000, maxFileBytes: 16 * 1024 * 1024 }
/** SIGTERM to exit in under 1 s: in-flight responses and the worker's last write get this long. */
const SHUTDOWN_GRACE_MS = 400
const SHUTDOWN_DEADLINE_MS = 900

export interface Io {
  log: Log
  stdout: (text: string) => void
  /** Starts listening for SIGTERM/SIGINT; resolves when one arrives. */
  waitForStop: () => Promise<string>
  /** Where the collector worker script is, when not beside the supervisor (a bundle may move it). */
  workerUrl?: URL
}

export async function main(argv: readonly string[], env: Record<string, string | undefined>, io: Io): Promise<number> {
  let config: Config
  let command: string
  try {
    ;({ command, config } = parseInvocation(argv, env))
    if (command === 'help') {
      io.stdout(HELP)
      return EXIT_OK
    }
    if (command === 'version') {
      io.stdout(`${VERSION}\n`)
      return EXIT_OK
    }
    if (config.collector || command === 'collect') assertWritableDirectory(config.metricsFile)
  } catch (error) {
    io.log((error as Error).message)
    return EXIT_USAGE
  }
  return command === 'collect' ? collect(config, io) : serve(config, io)
}

function assertWritableDirectory(metricsFile: string): void {
  const directory = dirname(metricsFile)
  try {
    // access() alone passes for a regular file (and for anything, as root): check it is a directory
    if (!statSync(directory).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' })
    accessSync(directory, constants.W_OK)
  } catch (error) {
    throw new RunnerMetricsError(
      'ERR_METRICS_DIR_NOT_WRITABLE',
      `--metrics-file must be in a writable directory: cannot write to ${directory} (${errnoCode(error)})`,
    )
  }
}

/** The listening address as a URL host: `*` for all interfaces, brackets around IPv6. */
function address(config: Config): string {
  if (config.host === undefined) return '*'
  return config.host.includes(':') ? `[${config.host}]` : config.host
}

function collectorSettings(config: Config): CollectorSettings {
  return {
    jobsLog: config.jobsLog,
    metricsFile: config.metricsFile,
    runnerName: config.runnerName,
    runnerType: config.runnerType,
    intervalSeconds: config.intervalSeconds,
    startedAtMs: Date.now(),
  }
}

async function collect(config: Config, io: Io): Promise<number> {
  // Loaded on demand: every module the main thread of `serve` does not need is memory it keeps.
  const { Collector } = await import('./collector/collect.js')
  const collector = new Collector({ ...collectorSettings(config), log: io.log })
  // The reader holds the job log open between collections: close it before exiting.
  const result = await collector.collectOnce().finally(() => collector.close())
  if (result.ok) return EXIT_OK
  io.log(result.written ? `wrote ${config.metricsFile}, but the job log could not be read` : `collection failed; ${config.metricsFile} was not replaced`)
  return EXIT_FAILURE
}

async function serve(config: Config, io: Io): Promise<number> {
  const stopRequested = io.waitForStop()
  const endpoint = createEndpoint({ metricsFile: config.metricsFile, maxConnections: config.maxConnections, log: io.log, ...ENDPOINT_LIMITS })
  try {
    await endpoint.listen(config.port, config.host)
  } catch (error) {
    if (errnoCode(error) === 'EADDRINUSE') {
      io.log(
        `port ${config.port} is already in use (another exporter? 9091 is also the Prometheus Pushgateway's default); choose another with --port or METRICS_PORT`,
      )
    } else {
      io.log(`cannot listen on ${address(config)}:${config.port}: ${(error as Error).message}`)
    }
    return EXIT_FAILURE
  }

  const supervisor = config.collector ? new CollectorSupervisor({ settings: collectorSettings(config), log: io.log, ...(io.workerUrl && { workerUrl: io.workerUrl }) }) : undefined
  try {
    await supervisor?.start()
  } catch (error) {
    io.log((error as Error).message)
    await endpoint.close(0)
    return EXIT_FAILURE
  }

  const stopHeapTrim = startHeapTrim()
  const collecting = config.collector ? `collector every ${config.intervalSeconds} s` : 'collector off'
  io.log(`serving ${config.metricsFile} on http://${address(config)}:${config.port}/metrics (${collecting})`)

  const stopFollowing = new AbortController()
  const following =
    config.runnerOutput === undefined
      ? undefined
      : (await import('./runner/follower.js')).followRunnerOutput({
          runnerOutput: config.runnerOutput,
          jobsLog: config.jobsLog,
          log: io.log,
          signal: stopFollowing.signal,
          pollMs: Math.min(1000, config.intervalSeconds * 1000),
          // A finished job reaches the metrics at once, not an interval later: an ephemeral
          // runner's last job must be scraped during the entrypoint's linger.
          onJobRecorded: () => supervisor?.collectNow(),
        })

  await stopRequested
  stopFollowing.abort()
  stopHeapTrim()
  // A safety net, not a path: both stops below are bounded by SHUTDOWN_GRACE_MS, so only a bug
  // reaches it, and a test cannot run it without exiting the test process.
  /* c8 ignore next 4 */
  const deadline = setTimeout(() => {
    io.log('shutdown took too long; exiting anyway')
    process.exit(EXIT_OK)
  }, SHUTDOWN_DEADLINE_MS)
  deadline.unref()
  await Promise.all([endpoint.close(SHUTDOWN_GRACE_MS), supervisor?.stop(SHUTDOWN_GRACE_MS), following])
  if (config.collector) removeOwnTempFiles(config.metricsFile)
  const stats = endpoint.stats()
  io.log(`stopped; served ${stats.responses} responses (${stats.byStatus[200] ?? 0} 200 OK)`)
  clearTimeout(deadline)
  return EXIT_OK
}

// Options, defaults and validation: argv + env in, a checked Config (or one clear error) out.
// Invalid config never gets past here, so the rest of the program trusts what it is given.

import { hostname } from 'node:os'
import { RunnerMetricsError } from './errors.js'

export type Command = 'serve' | 'collect' | 'help' | 'version'

export interface Config {
  port: number
  /** `undefined` listens on all interfaces, as `nc -l` does. */
  host: string | undefined
  metricsFile: string
  jobsLog: string
  intervalSeconds: number
  runnerName: string
  runnerType: string
  collector: boolean
  maxConnections: number
  /** A copy of the runner's stdout to follow for true job results (see src/runner/); off when undefined. */
  runnerOutput: string | undefined
}

export interface Invocation {
  command: Command
  config: Config
}

type Env = Record<string, string | undefined>

interface OptionSpec {
  key: keyof Config
  flag: string
  env: string
  parse: (raw: string, name: string) => Config[keyof Config]
}

const MIN_INTERVAL_SECONDS = 0.05

function invalid(name: string, rule: string, raw: string): RunnerMetricsError {
  return new RunnerMetricsError('ERR_INVALID_OPTION', `${name} must be ${rule} (got ${JSON.stringify(raw)})`)
}

function parsePort(raw: string, name: string): number {
  const port = Number(raw)
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) throw invalid(name, 'a port number from 1 to 65535', raw)
  return port
}

function parseInterval(raw: string, name: string): number {
  const seconds = Number(raw)
  if (!/^\d+(\.\d+)?$|^\.\d+$/.test(raw) || seconds < MIN_INTERVAL_SECONDS) {
    throw invalid(name, `a number of seconds >= ${MIN_INTERVAL_SECONDS}`, raw)
  }
  return seconds
}

function parseMaxConnections(raw: string, name: string): number {
  const count = Number(raw)
  if (!/^\d+$/.test(raw) || count < 1 || count > 1_000_000) throw invalid(name, 'a whole number from 1 to 1000000', raw)
  return count
}

function parseText(raw: string, name: string): string {
  if (raw === '') throw invalid(name, 'a non-empty string', raw)
  return raw
}

function parseHost(raw: string, name: string): string | undefined {
  return parseText(raw, name)
}

function parseCollectorSwitch(raw: string, name: string): boolean {
  const value = raw.toLowerCase()
  if (value === 'on' || value === 'true' || value === '1') return true
  if (value === 'off' || value === 'false' || value === '0') return false
  throw invalid(name, 'on or off', raw)
}

const OPTIONS: readonly OptionSpec[] = [
  { key: 'port', flag: '--port', env: 'METRICS_PORT', parse: parsePort },
  { key: 'host', flag: '--host', env: 'METRICS_HOST', parse: parseHost },
  { key: 'metricsFile', flag: '--metrics-file', env: 'METRICS_FILE', parse: parseText },
  { key: 'jobsLog', flag: '--jobs-log', env: 'JOBS_LOG', parse: parseText },
  { key: 'intervalSeconds', flag: '--interval', env: 'METRICS_INTERVAL', parse: parseInterval },
  { key: 'runnerName', flag: '--runner-name', env: 'RUNNER_NAME', parse: parseText },
  { key: 'runnerType', flag: '--runner-type', env: 'RUNNER_TYPE', parse: parseText },
  { key: 'maxConnections', flag: '--max-connections', env: 'METRICS_MAX_CONNECTIONS', parse: parseMaxConnections },
  { key: 'collector', flag: '--collector', env: 'METRICS_COLLECTOR', parse: parseCollectorSwitch },
  { key: 'runnerOutput', flag: '--runner-output', env: 'RUNNER_OUTPUT_LOG', parse: parseText },
]

export function defaultConfig(): Config {
  return {
    port: 9091,
    host: undefined,
    metricsFile: '/tmp/metrics.prom',
    jobsLog: '/tmp/jobs.log',
    intervalSeconds: 30,
    runnerName: hostname(),
    runnerType: 'standard',
    collector: true,
    maxConnections: 512,
    runnerOutput: undefined,
  }
}

const COMMANDS: readonly Command[] = ['serve', 'collect']

/** Turns argv (without node and the script) and the environment into a checked invocation. */
export function parseInvocation(argv: readonly string[], env: Env): Invocation {
  const config = defaultConfig()
  const set = config as unknown as Record<string, unknown>

  for (const option of OPTIONS) {
    const raw = env[option.env]
    // An empty variable counts as unset: compose files and `docker run -e NAME=` produce them.
    if (raw !== undefined && raw !== '') set[option.key] = option.parse(raw, option.env)
  }

  let command: Command | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '--help' || arg === '-h') return { command: 'help', config }
    if (arg === '--version' || arg === '-v') return { command: 'version', config }
    if (arg === '--no-collector') {
      config.collector = false
      continue
    }
    if (!arg.startsWith('-')) {
      if (command !== undefined || !(COMMANDS as readonly string[]).includes(arg)) {
        throw new RunnerMetricsError('ERR_UNKNOWN_OPTION', `unknown command ${JSON.stringify(arg)} (commands: serve, collect; see --help)`)
      }
      command = arg as Command
      continue
    }
    const equals = arg.indexOf('=')
    const flag = equals === -1 ? arg : arg.slice(0, equals)
    const option = OPTIONS.find((candidate) => candidate.flag === flag)
    if (option === undefined) {
      throw new RunnerMetricsError('ERR_UNKNOWN_OPTION', `unknown option ${JSON.stringify(flag)} (see --help)`)
    }
    let raw: string | undefined
    if (equals !== -1) raw = arg.slice(equals + 1)
    else raw = argv[++i]
    if (raw === undefined) throw new RunnerMetricsError('ERR_INVALID_OPTION', `${flag} needs a value`)
    set[option.key] = option.parse(raw, flag)
  }

  return { command: command ?? 'serve', config }
}

export const HELP = `Usage: runner-metrics [serve|collect] [options]

Serves Prometheus metrics for a self-hosted GitHub Actions runner: a drop-in
replacement for the netcat loop on port 9091.

Commands:
  serve (default)  run the HTTP endpoint and the collector
  collect          collect once, write the metrics file atomically, exit

Options (each also read from the environment variable shown; flags win):
  --port N               METRICS_PORT             port to listen on (9091)
  --host ADDR            METRICS_HOST             address to listen on (all interfaces)
  --metrics-file PATH    METRICS_FILE             metrics file served and written (/tmp/metrics.prom)
  --jobs-log PATH        JOBS_LOG                 job log read by the collector (/tmp/jobs.log)
  --interval SECONDS     METRICS_INTERVAL         seconds between collections, >= 0.05 (30)
  --runner-name NAME     RUNNER_NAME              runner_name label (the host name)
  --runner-type TYPE     RUNNER_TYPE              runner_type label (standard)
  --max-connections N    METRICS_MAX_CONNECTIONS  connections served at once (512)
  --no-collector         METRICS_COLLECTOR=off    only serve a file another process writes
  --runner-output PATH   RUNNER_OUTPUT_LOG        follow this copy of the runner's stdout and
                                                  record each job's true result (off)
  -h, --help             show this help
  -v, --version          show the version

Exit codes: 0 ok, 1 runtime failure (port in use, collection failed), 2 invalid options.
`

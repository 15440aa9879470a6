// `make bench`: measures the endpoint against its peers, prints a table, writes
// bench/results/latest.json, and exits 1 when a budget (or a soundness check) is missed.
//
// Environment: BENCH_QUICK=1 (1 s loads, 5 s overhead, 10^4-line logs, one run),
// BENCH_SECONDS (10), BENCH_OVERHEAD_SECONDS (60), BENCH_RUNS (3), BENCH_RESULTS (output path),
// BENCH_CLI (the exporter to measure, dist/cli.js).

import { copyFileSync, existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { coldCollect, measureColdCollections, measureIncremental } from './collector-cost.mjs'
import { writeJobLog } from './joblog.mjs'
import { describeMachine } from './machine.mjs'
import { measureOverhead } from './overhead.mjs'
import { findExecutable } from './peers.mjs'
import { makeTempDir, removeTempDirs, stopAll } from './processes.mjs'
import { runScrapeLoad } from './scrape-load.mjs'
import { renderReport } from './table.mjs'
import { judge } from './verdicts.mjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const JOBS = 10_000

function readOptions(env) {
  const quick = env.BENCH_QUICK === '1'
  const positive = (name, fallback, integer = false) => {
    if (env[name] === undefined || env[name] === '') return fallback
    const value = Number(env[name])
    if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
      throw new Error(`${name} must be a positive ${integer ? 'integer' : 'number'} (got "${env[name]}")`)
    }
    return value
  }
  return {
    quick,
    seconds: positive('BENCH_SECONDS', quick ? 1 : 10),
    overheadSeconds: positive('BENCH_OVERHEAD_SECONDS', quick ? 5 : 60, true),
    runs: positive('BENCH_RUNS', quick ? 1 : 3, true),
    coldSizes: quick ? [10_000] : [10_000, 100_000, 1_000_000],
    results: resolve(env.BENCH_RESULTS || join(root, 'bench', 'results', 'latest.json')),
    cli: resolve(env.BENCH_CLI || join(root, 'dist', 'cli.js')),
  }
}

async function main() {
  const options = readOptions(process.env)
  if (!existsSync(options.cli)) throw new Error(`${options.cli} is missing: run \`npm run build\` first`)
  const log = (message) => process.stderr.write(`bench: ${message}\n`)
  const tools = { nginx: findExecutable('nginx'), nc: findExecutable('nc'), wrk: findExecutable('wrk') }
  for (const [name, path] of Object.entries(tools)) {
    if (!path) log(`${name} is not installed: skipping what needs it (\`make bench-deps\` installs nginx, netcat-openbsd and wrk)`)
  }
  const startedAt = new Date().toISOString()
  const machine = describeMachine(tools)
  const dir = makeTempDir()

  log(`generating a job log of ${JOBS} jobs and rendering it with our collector`)
  const jobsLog = join(dir, 'jobs.log')
  writeJobLog(jobsLog, { lines: JOBS * 2 })
  // The served file and the peers' own files (nginx's config, the netcat script) live apart from the logs.
  const dataDir = join(dir, 'data')
  mkdirSync(dataDir)
  const metricsFile = join(dataDir, 'metrics.prom')
  const rendered = await coldCollect({ cli: options.cli, jobsLog, metricsFile })
  const metricsInfo = { bytes: statSync(metricsFile).size, jobs: rendered.jobs, lines: JOBS * 2 }

  const scrape = await runScrapeLoad({
    cli: options.cli,
    tools,
    dir: dataDir,
    metricsFile,
    jobsLog,
    seconds: options.seconds,
    runs: options.runs,
    log,
  })

  log(`overhead: two instances (scraped, idle) for ${options.overheadSeconds} s`)
  const overheadLog = join(dir, 'overhead-jobs.log')
  copyFileSync(jobsLog, overheadLog)
  const overhead = await measureOverhead({
    cli: options.cli,
    jobsLog: overheadLog,
    dir,
    seconds: options.overheadSeconds,
    settleSeconds: options.quick ? 1 : 2,
  })

  log(`collector cost: cold collections over ${options.coldSizes.join(', ')} lines`)
  const cold = await measureColdCollections({ cli: options.cli, dir, sizes: options.coldSizes, repeat: options.quick ? 1 : options.runs })
  const biggest = Math.max(...options.coldSizes)
  log(`collector cost: 1,000-line appends on ${biggest} lines`)
  const incremental = await measureIncremental({
    cli: options.cli,
    dir,
    baseLog: cold.logs[biggest],
    baseLines: biggest,
    repeat: options.quick ? 1 : 5,
  })
  const collector = { cold, incremental }

  const verdicts = judge({ scrape, overhead, collector, quick: options.quick })
  const passed = [...verdicts.budgets, ...verdicts.checks].every((v) => v.pass)
  const results = {
    version: 1,
    quick: options.quick,
    startedAt,
    finishedAt: new Date().toISOString(),
    loadAverageAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
    options: { seconds: options.seconds, overheadSeconds: options.overheadSeconds, runs: options.runs, coldSizes: options.coldSizes },
    machine,
    metricsFile: metricsInfo,
    scrape,
    overhead,
    collector,
    verdicts,
    passed,
  }
  process.stdout.write(renderReport(results) + '\n')
  writeAtomically(options.results, JSON.stringify(results, null, 2) + '\n')
  log(`results written to ${options.results}`)
  return passed ? 0 : 1
}

function writeAtomically(path, text) {
  mkdirSync(dirname(path), { recursive: true })
  const temp = `${path}.${process.pid}.tmp`
  writeFileSync(temp, text)
  renameSync(temp, path)
}

async function cleanUp() {
  await stopAll()
  removeTempDirs()
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}: stopping every process it started\n`)
    cleanUp().finally(() => process.exit(130))
  })
}

main()
  .then(async (code) => {
    await cleanUp()
    process.exitCode = code
  })
  .catch(async (error) => {
    process.stderr.write(`bench: failed: ${error.stack ?? error.message}\n`)
    await cleanUp()
    process.exitCode = 2
  })

// Prometheus text format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/):
// the rendering of our series, and a self-check the collector runs on that output before it
// publishes it. Pure: plain data in, text (or a list of problems) out.

import { DURATION_BUCKETS, FINISHED_STATUSES, type JobCounts } from './jobs.js'
import type { ProcessStats } from './process-stats.js'

export interface ExpositionInput {
  runner: { name: string; type: string; version: string }
  uptimeSeconds: number
  counts: JobCounts
  collector: { errorsTotal: number; lastSuccessEpochSeconds: number | undefined; durationSeconds: number | undefined }
  process: ProcessStats
}

type MetricType = 'counter' | 'gauge' | 'histogram'

// The `le` label values, rendered once: `5`, `15`, ..., `7200`, `+Inf`.
const BUCKET_LABELS: readonly string[] = [...DURATION_BUCKETS.map(formatValue), '+Inf']

export function renderExposition(input: ExpositionInput): string {
  const { runner, counts, collector, process: processStats } = input
  const runnerLabels = `runner_name="${escapeLabelValue(runner.name)}",runner_type="${escapeLabelValue(runner.type)}"`
  let text = ''
  const family = (name: string, type: MetricType, help: string): void => {
    text += `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`
  }
  const sample = (name: string, labels: string, value: number): void => {
    text += labels === '' ? `${name} ${formatValue(value)}\n` : `${name}{${labels}} ${formatValue(value)}\n`
  }
  /** A family of one sample; left out entirely while its value is unknown. */
  const single = (name: string, type: MetricType, help: string, labels: string, value: number | undefined): void => {
    if (value === undefined) return
    family(name, type, help)
    sample(name, labels, value)
  }

  single('github_runner_info', 'gauge', 'The runner this exporter describes and the runner-metrics version; always 1.', `${runnerLabels},version="${escapeLabelValue(runner.version)}"`, 1)

  single('github_runner_uptime_seconds', 'gauge', 'Seconds since the metrics exporter started.', runnerLabels, input.uptimeSeconds)

  family('github_runner_jobs_total', 'counter', 'Jobs finished since the job log began, by result.')
  for (const status of FINISHED_STATUSES) {
    sample('github_runner_jobs_total', `${runnerLabels},status="${status}"`, counts.jobs[status])
  }

  family('github_runner_job_duration_seconds', 'histogram', 'Duration of finished jobs in seconds.')
  let cumulative = 0
  for (let i = 0; i < BUCKET_LABELS.length; i++) {
    cumulative += counts.bucketCounts[i]
    sample('github_runner_job_duration_seconds_bucket', `${runnerLabels},le="${BUCKET_LABELS[i]}"`, cumulative)
  }
  sample('github_runner_job_duration_seconds_sum', runnerLabels, counts.durationSum)
  sample('github_runner_job_duration_seconds_count', runnerLabels, counts.durationCount)

  single('github_runner_busy', 'gauge', '1 while a job is running (the last job event is "started"), else 0.', runnerLabels, counts.busy ? 1 : 0)

  single('github_runner_last_job_completed_timestamp_seconds', 'gauge', 'Unix time of the latest job finish in the job log.', runnerLabels, counts.lastCompletedEpochSeconds)

  single('github_runner_jobs_log_invalid_lines_total', 'counter', 'Job log lines skipped because they could not be read as a job event.', '', counts.invalidLines)

  single('github_runner_collector_errors_total', 'counter', 'Collections that failed to read the job log or to publish the metrics.', '', collector.errorsTotal)
  single('github_runner_collector_last_success_timestamp_seconds', 'gauge', 'Unix time of the last collection that read the job log and published the metrics.', '', collector.lastSuccessEpochSeconds)
  single('github_runner_collector_duration_seconds', 'gauge', 'Duration of the last collection in seconds.', '', collector.durationSeconds)

  single('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', '', processStats.cpuSecondsTotal)
  single('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', '', processStats.residentMemoryBytes)
  single('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.', '', processStats.startTimeSeconds)
  single('process_open_fds', 'gauge', 'Number of open file descriptors.', '', processStats.openFds)
  single('process_max_fds', 'gauge', 'Maximum number of open file descriptors.', '', processStats.maxFds)
  return text
}

/** Label values may hold any UTF-8, but `\`, `"` and a line feed must be escaped. */
function escapeLabelValue(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')
}

/** HELP text escapes only `\` and a line feed. */
function escapeHelp(help: string): string {
  return help.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')
}

/** As Go's strconv.ParseFloat reads it: JS prints integers below 1e21 without an exponent. */
function formatValue(value: number): string {
  if (Number.isFinite(value)) return String(value)
  if (Number.isNaN(value)) return 'NaN'
  return value > 0 ? '+Inf' : '-Inf'
}

// ---- Self-check -------------------------------------------------------------------------------
// Not a general parser: it reads the subset renderExposition writes, and finds what would make
// Prometheus reject or misread it.

interface Sample {
  name: string
  labels: Map<string, string>
  value: number
}

interface HistogramSeries {
  /** Where the series starts, for the messages. */
  line: number
  lastBound: number | undefined
  lastCount: number | undefined
  infCount: number | undefined
  count: number | undefined
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const WHOLE_METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/
const FLOAT = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/
const METRIC_TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

/** The problems that make `text` unfit to publish; empty when it is valid. */
export function checkExposition(text: string): string[] {
  if (text === '') return ['the text is empty']
  const problems: string[] = []
  const helps = new Set<string>()
  const types = new Map<string, string>()
  const series = new Set<string>()
  const closedFamilies = new Set<string>()
  const histograms = new Map<string, HistogramSeries>()
  let currentFamily: string | undefined

  const lines = text.split('\n')
  if (text.endsWith('\n')) lines.pop()
  else problems.push('the text does not end with a line feed')

  lines.forEach((line, index) => {
    const at = `line ${index + 1}`
    if (line === '') {
      problems.push(`${at}: empty line`)
      return
    }
    if (line.startsWith('#')) {
      const problem = readComment(line, helps, types)
      if (problem !== undefined) problems.push(`${at}: ${problem}`)
      return
    }
    const sample = parseSample(line)
    if (typeof sample === 'string') {
      problems.push(`${at}: ${sample}`)
      return
    }

    const family = familyOf(sample.name, types)
    if (!helps.has(family) || !types.has(family)) problems.push(`${at}: ${sample.name} has no # HELP and # TYPE before it`)
    if (family !== currentFamily) {
      if (currentFamily !== undefined) closedFamilies.add(currentFamily)
      if (closedFamilies.has(family)) problems.push(`${at}: the samples of ${family} are not all in one group`)
      currentFamily = family
    }
    const key = seriesKey(sample.name, sample.labels)
    if (series.has(key)) problems.push(`${at}: duplicate series ${key}`)
    series.add(key)
    if (types.get(family) === 'histogram') {
      const problem = checkHistogramSample(family, sample, index + 1, histograms)
      if (problem !== undefined) problems.push(`${at}: ${problem}`)
    }
  })

  for (const [key, histogram] of histograms) {
    const at = `line ${histogram.line}`
    if (histogram.infCount === undefined) problems.push(`${at}: ${key} has no le="+Inf" bucket`)
    else if (histogram.count === undefined) problems.push(`${at}: ${key} has no _count`)
    else if (histogram.infCount !== histogram.count) {
      problems.push(`${at}: ${key} has le="+Inf" bucket ${histogram.infCount} but _count ${histogram.count}`)
    }
  }
  return problems
}

/** Records a `# HELP` or `# TYPE` line; other comments are allowed and ignored. */
function readComment(line: string, helps: Set<string>, types: Map<string, string>): string | undefined {
  const [hash, keyword, name, ...rest] = line.split(' ')
  if (hash !== '#' || (keyword !== 'HELP' && keyword !== 'TYPE')) return undefined
  if (name === undefined || !WHOLE_METRIC_NAME.test(name)) return `# ${keyword} without a valid metric name`
  if (keyword === 'HELP') {
    if (helps.has(name)) return `second # HELP for ${name}`
    helps.add(name)
    return undefined
  }
  const type = rest.join(' ')
  if (!METRIC_TYPES.has(type)) return `# TYPE ${name} has an unknown type "${type}"`
  if (types.has(name)) return `second # TYPE for ${name}`
  types.set(name, type)
  return undefined
}

/** `name{label="value",...} value`, or a description of what is wrong with the line. */
function parseSample(line: string): Sample | string {
  const name = METRIC_NAME.exec(line)?.[0]
  if (name === undefined) return `cannot read a metric name in ${JSON.stringify(line)}`
  const labels = new Map<string, string>()
  let i = name.length
  if (line[i] === '{') {
    i++
    while (line[i] !== '}') {
      const labelName = LABEL_NAME.exec(line.slice(i))?.[0]
      if (labelName === undefined || line.slice(i + labelName.length, i + labelName.length + 2) !== '="') {
        return `malformed labels in ${JSON.stringify(line)}`
      }
      i += labelName.length + 2
      let value = ''
      while (line[i] !== '"') {
        const char = line[i]
        if (char === undefined) return `unterminated label value in ${JSON.stringify(line)}`
        if (char === '\\') {
          const escaped = line[i + 1]
          if (escaped === 'n') value += '\n'
          else if (escaped === '\\' || escaped === '"') value += escaped
          else return `invalid escape in a label value in ${JSON.stringify(line)}`
          i += 2
        } else {
          value += char
          i++
        }
      }
      i++
      if (labels.has(labelName)) return `label ${labelName} given twice in ${JSON.stringify(line)}`
      labels.set(labelName, value)
      if (line[i] === ',') i++
      else if (line[i] !== '}') return `malformed labels in ${JSON.stringify(line)}`
    }
    i++
  }
  const value = line.slice(i + 1)
  if (line[i] !== ' ' || !FLOAT.test(value)) return `no valid value in ${JSON.stringify(line)}`
  return { name, labels, value: parseFloatValue(value) }
}

function parseFloatValue(text: string): number {
  if (text === '+Inf') return Infinity
  if (text === '-Inf') return -Infinity
  return Number(text)
}

/** The family a sample belongs to: a histogram's `_bucket`, `_sum` and `_count` are its own. */
function familyOf(name: string, types: Map<string, string>): string {
  const base = name.replace(/_(?:bucket|sum|count)$/, '')
  return base !== name && types.get(base) === 'histogram' ? base : name
}

function seriesKey(name: string, labels: Map<string, string>): string {
  const pairs = [...labels].sort(([a], [b]) => (a < b ? -1 : 1)).map(([label, value]) => `${label}="${escapeLabelValue(value)}"`)
  return `${name}{${pairs.join(',')}}`
}

function checkHistogramSample(
  family: string,
  sample: Sample,
  line: number,
  histograms: Map<string, HistogramSeries>,
): string | undefined {
  const labels = new Map(sample.labels)
  labels.delete('le')
  const key = seriesKey(family, labels)
  let histogram = histograms.get(key)
  if (histogram === undefined) {
    histogram = { line, lastBound: undefined, lastCount: undefined, infCount: undefined, count: undefined }
    histograms.set(key, histogram)
  }
  if (sample.name === `${family}_count`) histogram.count = sample.value
  if (sample.name !== `${family}_bucket`) return undefined

  const le = sample.labels.get('le')
  if (le === undefined) return `${sample.name} has no le label`
  if (!FLOAT.test(le)) return `${sample.name} has le="${le}", not a number`
  const bound = parseFloatValue(le)
  const previousBound = histogram.lastBound
  const previousCount = histogram.lastCount
  histogram.lastBound = bound
  histogram.lastCount = sample.value
  if (bound === Infinity) histogram.infCount = sample.value
  if (previousBound !== undefined && !(bound > previousBound)) return `${key}: bucket le="${le}" does not come after a smaller le`
  if (previousCount !== undefined && sample.value < previousCount) return `${key}: bucket le="${le}" counts fewer than the bucket before it`
  return undefined
}

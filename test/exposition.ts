import { readFileSync } from 'node:fs'
import t from 'tap'
import { checkExposition, renderExposition } from '../src/collector/exposition.js'
import { emptyCounts } from '../src/collector/jobs.js'
import { EVIL_RUNNER_NAME, countsOf, realisticInput } from './fixtures/collector-exposition-input.js'

const golden = readFileSync(new URL('./fixtures/collector-exposition.prom', import.meta.url), 'utf8')
const sampleLines = (text: string): string[] => text.split('\n').filter((line) => line !== '' && !line.startsWith('#'))
const familiesOf = (text: string): string[] =>
  text
    .split('\n')
    .filter((line) => line.startsWith('# TYPE '))
    .map((line) => line.split(' ').slice(2).join(' '))

t.test('renders exactly the documented series (golden file)', async (t) => {
  const text = renderExposition(realisticInput())
  t.equal(text, golden)
  t.same(checkExposition(text), [])
  t.same(familiesOf(text), [
    'github_runner_info gauge',
    'github_runner_uptime_seconds gauge',
    'github_runner_jobs_total counter',
    'github_runner_job_duration_seconds histogram',
    'github_runner_busy gauge',
    'github_runner_last_job_completed_timestamp_seconds gauge',
    'github_runner_jobs_log_invalid_lines_total counter',
    'github_runner_collector_errors_total counter',
    'github_runner_collector_last_success_timestamp_seconds gauge',
    'github_runner_collector_duration_seconds gauge',
    'process_cpu_seconds_total counter',
    'process_resident_memory_bytes gauge',
    'process_start_time_seconds gauge',
    'process_open_fds gauge',
    'process_max_fds gauge',
  ])
})

t.test('every family has HELP then TYPE, and every line ends in a line feed', async (t) => {
  const text = renderExposition(realisticInput())
  t.ok(text.endsWith('\n'))
  t.notOk(text.includes('\n\n'), 'no empty lines')
  const lines = text.slice(0, -1).split('\n')
  lines.forEach((line, i) => {
    if (line.startsWith('# TYPE ')) t.equal(lines[i - 1]!.split(' ').slice(0, 3).join(' '), `# HELP ${line.split(' ')[2]}`)
  })
})

t.test('before any job: all five statuses at 0, empty histogram, no last completion', async (t) => {
  const text = renderExposition(realisticInput({ counts: emptyCounts() }))
  t.same(checkExposition(text), [])
  const labels = 'runner_name="runner-1",runner_type="standard"'
  for (const status of ['success', 'failure', 'cancelled', 'skipped', 'unknown']) {
    t.ok(text.includes(`github_runner_jobs_total{${labels},status="${status}"} 0\n`), status)
  }
  t.ok(text.includes(`github_runner_job_duration_seconds_bucket{${labels},le="+Inf"} 0\n`))
  t.ok(text.includes(`github_runner_job_duration_seconds_count{${labels}} 0\n`))
  t.ok(text.includes(`github_runner_job_duration_seconds_sum{${labels}} 0\n`))
  t.ok(text.includes(`github_runner_busy{${labels}} 0\n`))
  t.notOk(text.includes('github_runner_last_job_completed_timestamp_seconds'), 'absent, HELP and TYPE too')
})

t.test('series without a value yet are left out entirely', async (t) => {
  const base = realisticInput()
  const text = renderExposition({
    ...base,
    collector: { errorsTotal: 0, lastSuccessEpochSeconds: undefined, durationSeconds: undefined },
    process: { ...base.process, openFds: undefined, maxFds: undefined },
  })
  t.same(checkExposition(text), [])
  for (const name of [
    'github_runner_collector_last_success_timestamp_seconds',
    'github_runner_collector_duration_seconds',
    'process_open_fds',
    'process_max_fds',
  ]) {
    t.notOk(text.includes(name), name)
  }
  t.ok(text.includes('\ngithub_runner_collector_errors_total 0\n'))
  t.ok(text.includes('\nprocess_start_time_seconds 1699995530\n'))
})

t.test('histogram buckets are cumulative, le rendered 5 ... 7200, +Inf', async (t) => {
  const durations = [0, 5, 5.01, 15, 29.9, 60, 7200, 7200.01, 1e6]
  const counts = countsOf(durations.map((durationSeconds) => ({ epochSeconds: 1, status: 'success' as const, durationSeconds })))
  const text = renderExposition(realisticInput({ counts }))
  const buckets = sampleLines(text)
    .filter((line) => line.startsWith('github_runner_job_duration_seconds_bucket'))
    .map((line) => `${/le="([^"]+)"/.exec(line)![1]} ${line.split(' ')[1]}`)
  t.same(buckets, ['5 2', '15 4', '30 5', '60 6', '120 6', '300 6', '600 6', '900 6', '1800 6', '3600 6', '7200 7', '+Inf 9'])
  t.ok(text.includes('github_runner_job_duration_seconds_count{runner_name="runner-1",runner_type="standard"} 9\n'))
  t.ok(text.includes(`github_runner_job_duration_seconds_sum{runner_name="runner-1",runner_type="standard"} ${durations.reduce((a, b) => a + b, 0)}\n`))
  t.same(checkExposition(text), [])
})

t.test('label values escape backslash, double quote and line feed', async (t) => {
  const text = renderExposition(
    realisticInput({ runner: { name: EVIL_RUNNER_NAME, type: 'a"b', version: '1\\2\n' } }),
  )
  const labels = 'runner_name="ci \\"runner\\" C:\\\\work\\\\\\nline two ünï 名前",runner_type="a\\"b"'
  t.ok(text.includes(`\ngithub_runner_info{${labels},version="1\\\\2\\n"} 1\n`), 'info')
  t.ok(text.includes(`\ngithub_runner_busy{${labels}} 1\n`), 'every runner series')
  t.equal(text.split('\n').length, golden.split('\n').length, 'the name adds no line')
  t.same(checkExposition(text), [])
})

t.test('numbers are written so Prometheus parses them', async (t) => {
  const valueOf = (uptimeSeconds: number): string => {
    const text = renderExposition(realisticInput({ uptimeSeconds }))
    return /\ngithub_runner_uptime_seconds\{[^}]*\} (\S+)\n/.exec(text)![1]!
  }
  t.equal(valueOf(0), '0')
  t.equal(valueOf(-0), '0')
  t.equal(valueOf(42), '42')
  t.equal(valueOf(1700000000), '1700000000')
  t.equal(valueOf(2 ** 53), '9007199254740992', 'large integers without an exponent')
  t.equal(valueOf(12.5), '12.5')
  t.equal(valueOf(0.1 + 0.2), '0.30000000000000004')
  t.equal(valueOf(1e-7), '1e-7', 'Go ParseFloat reads exponents')
  t.equal(valueOf(Infinity), '+Inf')
  t.equal(valueOf(-Infinity), '-Inf')
  t.equal(valueOf(NaN), 'NaN')
})

t.test('unlabelled series carry no braces', async (t) => {
  const text = renderExposition(realisticInput())
  for (const name of ['github_runner_jobs_log_invalid_lines_total 2', 'process_resident_memory_bytes 52428800', 'process_cpu_seconds_total 1.234567']) {
    t.ok(text.includes(`\n${name}\n`), name)
  }
})

// ---- checkExposition ----------------------------------------------------------------------

/** The golden text with `from` replaced by `to` (which must be there). */
const mutate = (from: string | RegExp, to: string): string => {
  const text = golden.replace(from, to)
  if (text === golden) throw new Error(`mutation not applied: ${from}`)
  return text
}
/** `line N` of the first line of `text` that starts with `start`. */
const at = (text: string, start: string): string => `line ${text.split('\n').findIndex((line) => line.startsWith(start)) + 1}`
const bucketLine = (le: string): string =>
  golden.split('\n').find((line) => line.includes('_bucket{') && line.includes(`le="${le}"`))!

t.test('check: the output of every variant passes', async (t) => {
  t.same(checkExposition(golden), [])
  t.same(checkExposition(renderExposition(realisticInput({ counts: emptyCounts() }))), [])
  t.same(checkExposition('# just a comment\n#also one\n'), [], 'comments other than HELP and TYPE are allowed')
})

t.test('check: text must end in a line feed and have no empty lines', async (t) => {
  t.same(checkExposition(golden.slice(0, -1)), ['the text does not end with a line feed'])
  t.same(checkExposition(''), ['the text is empty'])
  t.same(checkExposition('\n'), ['line 1: empty line'])
  const text = mutate('# HELP github_runner_busy', '\n# HELP github_runner_busy')
  t.same(checkExposition(text), [`line ${text.split('\n').indexOf('') + 1}: empty line`])
  t.same(checkExposition(golden + '\n'), [`line ${golden.split('\n').length}: empty line`])
})

t.test('check: every sample needs HELP and TYPE before it', async (t) => {
  const noHelp = mutate(/# HELP github_runner_busy [^\n]*\n/, '')
  t.same(checkExposition(noHelp), [`${at(noHelp, 'github_runner_busy{')}: github_runner_busy has no # HELP and # TYPE before it`])
  const noType = mutate('# TYPE github_runner_busy gauge\n', '')
  t.same(checkExposition(noType), [`${at(noType, 'github_runner_busy{')}: github_runner_busy has no # HELP and # TYPE before it`])
  t.same(checkExposition('a 1\n# HELP a A.\n# TYPE a gauge\n'), ['line 1: a has no # HELP and # TYPE before it'])
  t.same(
    checkExposition('# HELP h H.\n# TYPE h gauge\nh_bucket{le="+Inf"} 1\n'),
    ['line 3: h_bucket has no # HELP and # TYPE before it'],
    'only a histogram owns _bucket samples',
  )
})

t.test('check: malformed HELP and TYPE lines', async (t) => {
  t.same(checkExposition('# HELP\n'), ['line 1: # HELP without a valid metric name'])
  t.same(checkExposition('# TYPE 1abc gauge\n'), ['line 1: # TYPE without a valid metric name'])
  t.same(checkExposition('# TYPE a\n'), ['line 1: # TYPE a has an unknown type ""'])
  t.same(checkExposition('# TYPE a gauge extra\n'), ['line 1: # TYPE a has an unknown type "gauge extra"'])
  const twoTypes = mutate('# TYPE github_runner_busy gauge', '# TYPE github_runner_busy gauge\n# TYPE github_runner_busy counter')
  t.same(checkExposition(twoTypes), [`${at(twoTypes, '# TYPE github_runner_busy counter')}: second # TYPE for github_runner_busy`])
  const twoHelps = mutate('# TYPE github_runner_busy gauge', '# TYPE github_runner_busy gauge\n# HELP github_runner_busy Again.')
  t.same(checkExposition(twoHelps), [`${at(twoHelps, '# HELP github_runner_busy Again')}: second # HELP for github_runner_busy`])
})

t.test('check: malformed samples', async (t) => {
  const header = '# HELP a A.\n# TYPE a gauge\n'
  const problem = (line: string): string[] => checkExposition(`${header}${line}\n`)
  t.same(problem('{b="c"} 1'), ['line 3: cannot read a metric name in "{b=\\"c\\"} 1"'])
  t.same(problem('a{b} 1'), ['line 3: malformed labels in "a{b} 1"'])
  t.same(problem('a{="c"} 1'), ['line 3: malformed labels in "a{=\\"c\\"} 1"'])
  t.same(problem('a{b="c"x} 1'), ['line 3: malformed labels in "a{b=\\"c\\"x} 1"'])
  t.same(problem('a{b="c"'), ['line 3: malformed labels in "a{b=\\"c\\""'])
  t.same(problem('a{'), ['line 3: malformed labels in "a{"'])
  t.same(problem('a{b="c'), ['line 3: unterminated label value in "a{b=\\"c"'])
  t.same(problem('a{b="c\\'), ['line 3: invalid escape in a label value in "a{b=\\"c\\\\"'])
  t.same(problem('a{b="\\t"} 1'), ['line 3: invalid escape in a label value in "a{b=\\"\\\\t\\"} 1"'])
  t.same(problem('a{b="1",b="2"} 1'), ['line 3: label b given twice in "a{b=\\"1\\",b=\\"2\\"} 1"'])
  for (const line of ['a', 'a ', 'a{b="c"}1', 'a  1', 'a 1 2', 'a one', 'a Inf', 'a 0x10', 'a 1e']) {
    t.same(problem(line), [`line 3: no valid value in ${JSON.stringify(line)}`], line)
  }
  for (const line of ['a 1', 'a -1.5', 'a 1e-7', 'a +Inf', 'a -Inf', 'a NaN', 'a .5', 'a{} 1', 'a{b="c",} 1', 'a{b="\\\\ \\" \\n"} 1']) {
    t.same(problem(line), [], line)
  }
})

t.test('check: duplicate series, whatever the label order or escaping', async (t) => {
  const busy = golden.split('\n').find((line) => line.startsWith('github_runner_busy{'))!
  const twice = mutate(busy, `${busy}\n${busy}`)
  t.same(checkExposition(twice), [
    `line ${twice.split('\n').lastIndexOf(busy) + 1}: duplicate series github_runner_busy{runner_name="runner-1",runner_type="standard"}`,
  ])
  const header = '# HELP a A.\n# TYPE a gauge\n'
  t.same(checkExposition(`${header}a{x="1",y="\\n"} 1\na{y="\\n",x="1"} 2\na{x="1",y="n"} 3\n`), [
    'line 4: duplicate series a{x="1",y="\\n"}',
  ])
  t.same(checkExposition(`${header}a 1\na{} 2\n`), ['line 4: duplicate series a{}'])
})

t.test('check: the samples of a family stay together', async (t) => {
  const text = '# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\na{x="1"} 1\nb 1\na{x="2"} 1\n'
  t.same(checkExposition(text), ['line 7: the samples of a are not all in one group'])
})

t.test('check: histogram buckets', async (t) => {
  const prefix = 'github_runner_job_duration_seconds'
  const key = `${prefix}{runner_name="runner-1",runner_type="standard"}`
  const le5 = bucketLine('5')
  const le15 = bucketLine('15')
  const inf = bucketLine('+Inf')
  const first = at(golden, `${prefix}_bucket`)
  const second = `line ${Number(first.split(' ')[1]) + 1}`

  t.same(checkExposition(mutate(`${le5}\n${le15}`, `${le15}\n${le5}`)), [
    `${second}: ${key}: bucket le="5" does not come after a smaller le`,
  ], 'le must increase')
  t.same(checkExposition(mutate(le15, le15.replace(/ 1$/, ' 0'))), [
    `${second}: ${key}: bucket le="15" counts fewer than the bucket before it`,
  ], 'counts must not decrease')
  const sameBound = mutate(le15, `${le15}\n${le15.replace('le="15"', 'le="15.0"')}`)
  t.same(checkExposition(sameBound), [
    `${at(sameBound, le15.replace('le="15"', 'le="15.0"'))}: ${key}: bucket le="15.0" does not come after a smaller le`,
  ], 'the same bound twice')
  t.same(checkExposition(mutate(le5, le5.replace('le="5"', 'le="NaN"'))), [
    `${second}: ${key}: bucket le="15" does not come after a smaller le`,
  ], 'a NaN bound')
  t.same(checkExposition(mutate(`${inf}\n`, '')), [`${first}: ${key} has no le="+Inf" bucket`])
  t.same(checkExposition(mutate(inf, inf.replace(/ 4$/, ' 5'))), [`${first}: ${key} has le="+Inf" bucket 5 but _count 4`])
  t.same(checkExposition(mutate(/\ngithub_runner_job_duration_seconds_count[^\n]*/, '')), [`${first}: ${key} has no _count`])
  t.same(checkExposition(mutate(le5, le5.replace('le="5"', 'le="five"'))), [`${first}: ${prefix}_bucket has le="five", not a number`])
  t.same(checkExposition(mutate(le5, le5.replace(',le="5"', ''))), [`${first}: ${prefix}_bucket has no le label`])
})

// The monitoring kit in deploy/prometheus is valid for the Prometheus we ship against: the config
// and the rules pass promtool's checks, the alert unit tests pass, and those unit tests fail when
// an alert is broken (so they really pin each alert's behaviour).
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const prometheusDir = fileURLToPath(new URL('../deploy/prometheus/', import.meta.url))
const rulesText = readFileSync(join(prometheusDir, 'rules.yml'), 'utf8')
const unitTestFiles = readdirSync(join(prometheusDir, 'tests')).filter((name) => name.endsWith('.yml')).sort()

interface Run {
  code: number | null
  output: string
}

async function promtool(args: string[], cwd: string): Promise<Run> {
  const child = spawn('promtool', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, output }
}

t.test('promtool check config accepts prometheus.yml and its rules, without warnings', async (t) => {
  const run = await promtool(['check', 'config', 'prometheus.yml'], prometheusDir)
  t.equal(run.code, 0, run.output)
  t.notMatch(run.output, /WARNING/)
  t.match(run.output, /SUCCESS: 1 rule files found/)
})

t.test('promtool check rules accepts rules.yml', async (t) => {
  const run = await promtool(['check', 'rules', 'rules.yml'], prometheusDir)
  t.equal(run.code, 0, run.output)
  t.notMatch(run.output, /WARNING/)
  t.match(run.output, /SUCCESS: 11 rules found/)
})

t.test('promtool test rules: every alert unit test passes', async (t) => {
  t.same(unitTestFiles, [
    'busy-too-long.yml',
    'collector-stale.yml',
    'exporter-down.yml',
    'failure-ratio-high.yml',
    'job-log-invalid-lines.yml',
    'recording.yml',
  ])
  const run = await promtool(['test', 'rules', ...unitTestFiles.map((name) => join('tests', name))], prometheusDir)
  t.equal(run.code, 0, run.output)
  t.equal(run.output.match(/SUCCESS/g)?.length, unitTestFiles.length, run.output)
  t.notMatch(run.output, /FAILED/)
})

// Each mutant breaks one alert the way a careless edit would; the alert's unit test must notice.
// A silenced alert proves the test expects it to fire; a loosened one proves the test expects
// it to stay silent where it should.
const mutants: { alert: string; file: string; from: string; to: string }[] = [
  { alert: 'GitHubRunnerExporterDown', file: 'exporter-down.yml', from: 'for: 2m', to: 'for: 0s' },
  { alert: 'GitHubRunnerCollectorStale', file: 'collector-stale.yml', from: '> 90', to: '> 60' },
  { alert: 'GitHubRunnerJobLogInvalidLines', file: 'job-log-invalid-lines.yml', from: '[15m])', to: '[1h])' },
  { alert: 'GitHubRunnerFailureRatioHigh', file: 'failure-ratio-high.yml', from: '>= 5', to: '>= 1' },
  { alert: 'GitHubRunnerBusyTooLong', file: 'busy-too-long.yml', from: ', 1800)', to: ', 600)' },
]

function alertBlock(alert: string): string {
  const start = rulesText.indexOf(`- alert: ${alert}\n`)
  const next = rulesText.indexOf('- alert: ', start + 1)
  return rulesText.slice(start, next === -1 ? undefined : next)
}

async function runMutant(t: Test, file: string, mutatedRules: string): Promise<Run> {
  const dir = t.testdir({
    'rules.yml': mutatedRules,
    tests: { [file]: readFileSync(join(prometheusDir, 'tests', file), 'utf8') },
  })
  return promtool(['test', 'rules', join('tests', file)], dir)
}

for (const { alert, file, from, to } of mutants) {
  t.test(`the unit test of ${alert} fails when the alert is broken`, async (t) => {
    const block = alertBlock(alert)
    t.equal(block.split(from).length, 2, `"${from}" appears once in ${alert}`)

    const loosened = await runMutant(t, file, rulesText.replace(block, block.replace(from, to)))
    t.equal(loosened.code, 1, `${from} -> ${to} is caught`)
    t.match(loosened.output, `alertname: ${alert}`)

    const silenced = block.replace(/expr: [|]?\n?[\s\S]*?\n(\s+)(for|labels):/, 'expr: absent(vector(1))\n$1$2:')
    t.not(silenced, block)
    const silencedRun = await runMutant(t, file, rulesText.replace(block, silenced))
    t.equal(silencedRun.code, 1, 'a silenced alert is caught')
    t.match(silencedRun.output, `alertname: ${alert}`)
  })
}

interface Panel {
  id: number
  type: string
  title: string
  datasource?: { type: string; uid: string }
  gridPos: { x: number; y: number; w: number; h: number }
  targets?: { datasource: { uid: string }; expr: string }[]
}

t.test('the Grafana dashboard imports anywhere: a datasource variable every query uses', async (t) => {
  const dashboard = JSON.parse(readFileSync(fileURLToPath(new URL('../deploy/grafana/runner-metrics.json', import.meta.url)), 'utf8')) as {
    uid: string
    panels: Panel[]
    templating: { list: { name: string; type: string; query: unknown; datasource?: { uid: string } }[] }
  }
  const variables = dashboard.templating.list
  t.match(variables[0], { name: 'datasource', type: 'datasource', query: 'prometheus' })
  for (const variable of variables.filter((v) => v.type === 'query')) t.equal(variable.datasource?.uid, '${datasource}', variable.name)

  const panels = dashboard.panels
  t.equal(new Set(panels.map((panel) => panel.id)).size, panels.length, 'unique panel ids')
  const queried = panels.filter((panel) => panel.type !== 'row')
  for (const panel of queried) {
    t.same(panel.datasource, { type: 'prometheus', uid: '${datasource}' }, panel.title)
    t.ok(panel.targets?.length, `${panel.title} has queries`)
    for (const target of panel.targets ?? []) t.equal(target.datasource.uid, '${datasource}', panel.title)
  }
  // What the issue asks the dashboard to show.
  t.same(
    ['Jobs by result', 'Failure ratio', 'Job duration', 'Busy ratio', 'Exporter CPU', 'Exporter memory', 'Last collection age'].filter(
      (title) => !queried.some((panel) => panel.title === title),
    ),
    [],
  )

  // No two panels on the same cells of the 24-column grid.
  const owner = new Map<string, string>()
  const overlaps: string[] = []
  for (const { gridPos, title } of panels) {
    if (gridPos.x + gridPos.w > 24) overlaps.push(`${title} is wider than the grid`)
    for (let x = gridPos.x; x < gridPos.x + gridPos.w; x++) {
      for (let y = gridPos.y; y < gridPos.y + gridPos.h; y++) {
        const other = owner.get(`${x},${y}`)
        if (other) overlaps.push(`${title} overlaps ${other} at ${x},${y}`)
        owner.set(`${x},${y}`, title)
      }
    }
  }
  t.same(overlaps, [])
})

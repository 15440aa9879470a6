// Prometheus' own checker must accept what we render, with no lint warnings: `promtool check
// metrics` reads the exposition on stdin and exits 0 with no output only when it has nothing to say.

import { spawnSync } from 'node:child_process'
import { closeSync, openSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { renderExposition } from '../src/collector/exposition.js'
import { emptyCounts } from '../src/collector/jobs.js'
import { EVIL_RUNNER_NAME, realisticInput } from './fixtures/collector-exposition-input.js'

interface PromtoolResult {
  status: number | null
  output: string
}

function promtoolCheck(file: string): PromtoolResult {
  const stdin = openSync(file, 'r')
  try {
    const result = spawnSync('promtool', ['check', 'metrics'], { stdio: [stdin, 'pipe', 'pipe'], encoding: 'utf8', timeout: 30_000 })
    if (result.error) throw result.error
    return { status: result.status, output: `${result.stdout}${result.stderr}` }
  } finally {
    closeSync(stdin)
  }
}

const found = spawnSync('promtool', ['--version'], { encoding: 'utf8', timeout: 30_000 })
if (found.error) {
  t.fail(
    `promtool is not installed (${found.error.message}): install the Debian package "prometheus" ` +
      '(apt-get install -y prometheus), which .ci/run does in CI',
  )
} else {
  const dir = t.testdir({})
  const check = (t: Test, name: string, text: string): void => {
    const file = join(dir, `${name}.prom`)
    writeFileSync(file, text)
    const { status, output } = promtoolCheck(file)
    t.equal(output, '', `${name}: promtool has nothing to say`)
    t.equal(status, 0, `${name}: promtool exits 0`)
  }

  t.test('realistic output with an evil runner name passes promtool check metrics', async (t) => {
    check(t, 'evil', renderExposition(realisticInput({ runner: { name: EVIL_RUNNER_NAME, type: 'spot\\"gpu"', version: '0.1.0' } })))
  })

  t.test('output before the first job passes promtool check metrics', async (t) => {
    const base = realisticInput()
    check(
      t,
      'fresh',
      renderExposition({
        ...base,
        counts: emptyCounts(),
        uptimeSeconds: 0,
        collector: { errorsTotal: 0, lastSuccessEpochSeconds: undefined, durationSeconds: undefined },
        process: { ...base.process, openFds: undefined, maxFds: undefined },
      }),
    )
  })

  t.test('the check is not vacuous: promtool flags what we must never write', async (t) => {
    const lint = join(dir, 'lint.prom')
    writeFileSync(lint, '# TYPE jobs counter\njobs 1\n')
    const linted = promtoolCheck(lint)
    t.not(linted.status, 0)
    t.match(linted.output, /no help text/)
    const unescaped = join(dir, 'unescaped.prom')
    writeFileSync(unescaped, '# HELP a A.\n# TYPE a gauge\na{runner_name="one\ntwo"} 1\n')
    const broken = promtoolCheck(unescaped)
    t.not(broken.status, 0)
    t.match(broken.output, /unescaped new-line/)
  })
}

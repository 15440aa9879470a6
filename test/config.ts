import { hostname } from 'node:os'
import t, { type Test } from 'tap'
import { defaultConfig, HELP, parseInvocation } from '../src/config.js'
import { RunnerMetricsError } from '../src/errors.js'

t.test('defaults match the netcat loop it replaces', async (t) => {
  const { command, config } = parseInvocation([], {})
  t.equal(command, 'serve')
  t.same(config, {
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
  })
  t.same(defaultConfig(), config)
})

t.test('every option has a flag and an environment variable; flags win', async (t) => {
  const env = {
    METRICS_PORT: '9100',
    METRICS_HOST: '127.0.0.1',
    METRICS_FILE: '/env/m.prom',
    JOBS_LOG: '/env/jobs.log',
    METRICS_INTERVAL: '15',
    RUNNER_NAME: 'env-runner',
    RUNNER_TYPE: 'chrome',
    METRICS_MAX_CONNECTIONS: '64',
    METRICS_COLLECTOR: 'off',
    RUNNER_OUTPUT_LOG: '/env/runner.out',
  }
  const fromEnv = parseInvocation([], env).config
  t.same(fromEnv, {
    port: 9100,
    host: '127.0.0.1',
    metricsFile: '/env/m.prom',
    jobsLog: '/env/jobs.log',
    intervalSeconds: 15,
    runnerName: 'env-runner',
    runnerType: 'chrome',
    collector: false,
    maxConnections: 64,
    runnerOutput: '/env/runner.out',
  })
  const argv = [
    'serve', '--port', '9200', '--host=::1', '--metrics-file', '/flag/m.prom', '--jobs-log=/flag/jobs.log',
    '--interval', '0.05', '--runner-name', 'flag-runner', '--runner-type', 'chrome-go', '--max-connections', '8',
    '--collector', 'on', '--runner-output', '/flag/runner.out',
  ]
  t.same(parseInvocation(argv, env).config, {
    port: 9200,
    host: '::1',
    metricsFile: '/flag/m.prom',
    jobsLog: '/flag/jobs.log',
    intervalSeconds: 0.05,
    runnerName: 'flag-runner',
    runnerType: 'chrome-go',
    collector: true,
    maxConnections: 8,
    runnerOutput: '/flag/runner.out',
  })
  t.equal(parseInvocation(['--no-collector'], {}).config.collector, false)
  t.equal(parseInvocation([], { METRICS_COLLECTOR: 'ON' }).config.collector, true)
  t.equal(parseInvocation([], { METRICS_COLLECTOR: 'false' }).config.collector, false)
})

t.test('an empty environment variable counts as unset', async (t) => {
  t.same(parseInvocation([], { METRICS_PORT: '', RUNNER_NAME: '', METRICS_HOST: '' }).config, defaultConfig())
})

t.test('commands', async (t) => {
  t.equal(parseInvocation(['collect'], {}).command, 'collect')
  t.equal(parseInvocation(['serve'], {}).command, 'serve')
  t.equal(parseInvocation(['--help'], {}).command, 'help')
  t.equal(parseInvocation(['-h'], {}).command, 'help')
  t.equal(parseInvocation(['--version'], {}).command, 'version')
  t.equal(parseInvocation(['-v'], {}).command, 'version')
  t.match(HELP, /--no-collector\s+METRICS_COLLECTOR=off/)
})

function rejects(t: Test, argv: string[], env: Record<string, string>, code: string, message: string): void {
  t.throws(() => parseInvocation(argv, env), { code, message }, `${argv.join(' ')} ${JSON.stringify(env)}`)
  try {
    parseInvocation(argv, env)
  } catch (error) {
    t.type(error, RunnerMetricsError)
  }
}

t.test('invalid values name the option and the rule', async (t) => {
  const port = 'a port number from 1 to 65535'
  rejects(t, ['--port', '0'], {}, 'ERR_INVALID_OPTION', `--port must be ${port} (got "0")`)
  rejects(t, ['--port', '65536'], {}, 'ERR_INVALID_OPTION', `--port must be ${port} (got "65536")`)
  rejects(t, ['--port', '80a'], {}, 'ERR_INVALID_OPTION', `--port must be ${port} (got "80a")`)
  rejects(t, [], { METRICS_PORT: '-1' }, 'ERR_INVALID_OPTION', `METRICS_PORT must be ${port} (got "-1")`)
  const interval = 'a number of seconds >= 0.05'
  rejects(t, ['--interval', 'abc'], {}, 'ERR_INVALID_OPTION', `--interval must be ${interval} (got "abc")`)
  rejects(t, ['--interval', '0.01'], {}, 'ERR_INVALID_OPTION', `--interval must be ${interval} (got "0.01")`)
  rejects(t, ['--interval', '1e3'], {}, 'ERR_INVALID_OPTION', `--interval must be ${interval} (got "1e3")`)
  rejects(t, [], { METRICS_INTERVAL: '-5' }, 'ERR_INVALID_OPTION', `METRICS_INTERVAL must be ${interval} (got "-5")`)
  t.equal(parseInvocation(['--interval', '.5'], {}).config.intervalSeconds, 0.5)
  rejects(t, ['--max-connections', '0'], {}, 'ERR_INVALID_OPTION', '--max-connections must be a whole number from 1 to 1000000 (got "0")')
  rejects(t, ['--runner-name='], {}, 'ERR_INVALID_OPTION', '--runner-name must be a non-empty string (got "")')
  rejects(t, [], { METRICS_COLLECTOR: 'maybe' }, 'ERR_INVALID_OPTION', 'METRICS_COLLECTOR must be on or off (got "maybe")')
  rejects(t, ['--port'], {}, 'ERR_INVALID_OPTION', '--port needs a value')
})

t.test('unknown flags and commands are refused', async (t) => {
  rejects(t, ['--prot', '9091'], {}, 'ERR_UNKNOWN_OPTION', 'unknown option "--prot" (see --help)')
  rejects(t, ['--prot=9091'], {}, 'ERR_UNKNOWN_OPTION', 'unknown option "--prot" (see --help)')
  rejects(t, ['serv'], {}, 'ERR_UNKNOWN_OPTION', 'unknown command "serv" (commands: serve, collect; see --help)')
  rejects(t, ['serve', 'collect'], {}, 'ERR_UNKNOWN_OPTION', 'unknown command "collect" (commands: serve, collect; see --help)')
})

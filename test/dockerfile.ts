// The Dockerfile and the compose file agree with the repository: what they copy exists, the
// scripts they run are executable, the port and health path are the exporter's defaults, and
// the build stage runs the npm scripts CI runs. (No Docker engine here: this is what can be
// checked without one.)
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { defaultConfig } from '../src/config.js'
import { REPO } from './fixtures/runner-image.js'

interface Instruction {
  keyword: string
  args: string
}

interface Stage {
  from: string
  name: string | undefined
  instructions: Instruction[]
}

/** Dockerfile -> stages of instructions (continuation lines joined, comments dropped). */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = []
  let pending = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (pending === '' && (line === '' || line.startsWith('#'))) continue
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `
      continue
    }
    const whole = (pending + line).trim()
    pending = ''
    const [keyword = '', ...rest] = whole.split(/\s+/)
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(' ') }
    if (instruction.keyword === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args)
      stages.push({ from: match?.[1] ?? '', name: match?.[2], instructions: [] })
    } else if (instruction.keyword !== 'ARG' || stages.length > 0) {
      stages.at(-1)?.instructions.push(instruction)
    }
  }
  return stages
}

const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8')
const stages = parseDockerfile(dockerfile)
const stage = (name: string): Stage => {
  const found = stages.find((candidate) => candidate.name === name)
  if (found === undefined) throw new Error(`no stage ${name}`)
  return found
}
const all = (s: Stage, keyword: string): string[] => s.instructions.filter((i) => i.keyword === keyword).map((i) => i.args)
const packageJson = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }

t.test('three stages: build, exporter, and the runner image as the default target', async (t) => {
  t.same(
    stages.map((s) => s.name),
    ['build', 'exporter', 'runner'],
  )
  t.equal(stage('runner').from, 'ubuntu:questing', 'the spike\'s base image')
})

t.test('every COPY from the build context exists; copied scripts are executable', async (t) => {
  const copies = stages.flatMap((s) => all(s, 'COPY')).filter((args) => !args.startsWith('--from='))
  t.ok(copies.length >= 6)
  for (const args of copies) {
    const sources = args.split(/\s+/).filter((word) => !word.startsWith('--')).slice(0, -1)
    for (const source of sources) {
      const path = join(REPO, source)
      t.ok(existsSync(path), `${source} exists`)
      if (source.endsWith('.sh')) {
        t.doesNotThrow(() => accessSync(path, constants.X_OK), `${source} is executable`)
        t.ok((statSync(path).mode & 0o005) === 0o005, `${source} is readable and executable by others (the image's non-root user)`)
      }
    }
  }
})

t.test('the build stage runs the npm scripts CI runs, and the bundle lands where the images copy it from', async (t) => {
  const commands = all(stage('build'), 'RUN')
  t.same(commands, ['npm ci', 'npm run build', 'npm run bundle'])
  for (const command of commands) {
    const script = /^npm run (\S+)$/.exec(command)?.[1]
    if (script !== undefined) t.ok(packageJson.scripts[script], `package.json has a "${script}" script`)
  }
  t.equal(packageJson.scripts.bundle, 'node scripts/bundle.mjs', 'the bundle script is scripts/bundle.mjs with its default output')
  t.match(packageJson.scripts.test, /npm run build/, 'CI (make test -> npm test) builds the same way')
  t.match(readFileSync(join(REPO, 'Makefile'), 'utf8'), /\bnpm ci\b/, 'and installs with npm ci')
  t.match(readFileSync(join(REPO, 'scripts', 'bundle.mjs'), 'utf8'), /join\(root, 'dist', 'bundle'\)/, 'default output dist/bundle')
  t.equal(all(stage('build'), 'WORKDIR')[0], '/src')
  for (const name of ['exporter', 'runner']) {
    t.ok(all(stage(name), 'COPY').includes('--from=build /src/dist/bundle/ /opt/runner-metrics/'), `${name} copies the bundle`)
  }
})

t.test('the port and the health check are the exporter defaults', async (t) => {
  const { port } = defaultConfig()
  t.equal(port, 9091)
  for (const name of ['exporter', 'runner']) {
    t.same(all(stage(name), 'EXPOSE'), [String(port)], `${name} exposes ${port}`)
    const [healthcheck = ''] = all(stage(name), 'HEALTHCHECK')
    t.match(healthcheck, /\/healthz/, `${name} checks /healthz`)
    t.match(healthcheck, new RegExp(`METRICS_PORT.{1,8}${port}`), `${name} checks the configured port, ${port} by default`)
  }
})

t.test('the runner image wires the entrypoint, the hooks and a non-root user', async (t) => {
  const runner = stage('runner')
  const destinations = new Set<string>()
  for (const args of all(runner, 'COPY')) {
    const words = args.split(/\s+/).filter((word) => !word.startsWith('--'))
    const target = words.at(-1) as string
    for (const source of words.slice(0, -1)) destinations.add(target.endsWith('/') ? target + source.split('/').filter(Boolean).at(-1) : target)
  }
  // Everything under /opt/runner-metrics that ENV or ENTRYPOINT names is something a COPY put there.
  const named = [...all(runner, 'ENV'), ...all(runner, 'ENTRYPOINT')].join(' ').match(/\/opt\/runner-metrics\/[\w./-]+/g) ?? []
  t.ok(named.length >= 5)
  for (const path of named) t.ok(destinations.has(path) || path === '/opt/runner-metrics/cli.js', `${path} is copied in`)
  t.match(all(runner, 'ENTRYPOINT')[0], /"\/opt\/runner-metrics\/entrypoint\.sh"/)
  const env = all(runner, 'ENV').join(' ')
  t.match(env, /ACTIONS_RUNNER_HOOK_JOB_STARTED=\/opt\/runner-metrics\/hooks\/job-started\.sh/)
  t.match(env, /ACTIONS_RUNNER_HOOK_JOB_COMPLETED=\/opt\/runner-metrics\/hooks\/job-completed\.sh/)
  t.match(env, /RUNNER_OUTPUT_LOG=\//, 'the runner output is followed')
  const users = all(runner, 'USER')
  t.equal(users.length, 1)
  t.not(users[0], 'root')
  t.notMatch(all(runner, 'RUN').join(' '), /\bnodejs\b|\bnpm\b/, 'no Node of its own: the exporter runs on the runner\'s')
  t.same(all(stage('exporter'), 'USER'), ['node'])
})

t.test('the production compose file runs the three runner types on ports 9091-9093', async (t) => {
  const compose = readFileSync(join(REPO, 'docker', 'docker-compose.production.yml'), 'utf8')
  const services = compose
    .slice(compose.indexOf('\nservices:\n'))
    .split(/\n(?= {2}\S)/)
    .slice(1)
    .map((section) => ({ name: /^ {2}([\w-]+):/.exec(section)?.[1], body: section }))
  t.same(
    services.map((service) => service.name),
    ['runner-standard', 'runner-chrome', 'runner-chrome-go'],
  )
  services.forEach((service, index) => {
    const type = (service.name as string).replace('runner-', '')
    t.match(service.body, new RegExp(`\\n {6}RUNNER_TYPE: ${type}\\n`), `${service.name} is a ${type} runner`)
    t.match(service.body, new RegExp(`- "${9091 + index}:9091"`), `${service.name} on host port ${9091 + index}`)
  })
  t.match(compose, /context: \.\.\n\s+target: runner/, 'built from this Dockerfile\'s runner target')
  t.ok(existsSync(join(REPO, 'docker', '..', 'Dockerfile')))
})

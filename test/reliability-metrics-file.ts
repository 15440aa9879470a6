// A broken metrics file is a clear 503 that names the problem, and the very next scrape after
// the fix is a 200 with the new content; the process keeps serving throughout. Runs the real
// CLI with --no-collector (the pure netcat replacement: another process writes the file), so
// the production size limit (16 MiB) is the one under test.
import { execFileSync } from 'node:child_process'
import { appendFileSync, chmodSync, closeSync, mkdirSync, openSync, renameSync, rmdirSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { errnoCode } from '../src/errors.js'
import { get, parseResponse } from './fixtures/http-client.js'
import { startCli } from './fixtures/exporter.js'

const MAX_FILE_BYTES = 16 * 1024 * 1024
// A kernel file that is write-only for everyone, root included: opening it for reading fails
// with EACCES even where root's CAP_DAC_OVERRIDE ignores a chmod 000.
const WRITE_ONLY_KERNEL_FILE = '/proc/sys/vm/drop_caches'

interface Case {
  name: string
  /** Breaks the file; returns the reason the 503 must give. */
  breakIt(file: string): string
  /** Undoes what breakIt did, so the file can be written again. */
  clear(file: string): void
}

/**
 * How to make the file unreadable here: chmod 000 when not root; as root (who reads it anyway),
 * a symlink to a file root cannot open for reading either. Undefined when neither works.
 */
function unreadableCase(): Case | undefined {
  if (process.getuid?.() !== 0) {
    return {
      name: 'unreadable (chmod 000)',
      breakIt: (file) => {
        chmodSync(file, 0)
        return `metrics file ${file} cannot be read (EACCES)`
      },
      clear: (file) => unlinkSync(file),
    }
  }
  try {
    closeSync(openSync(WRITE_ONLY_KERNEL_FILE, 'r'))
    return undefined
  } catch (error) {
    if (errnoCode(error) !== 'EACCES') return undefined
  }
  return {
    name: `unreadable (a symlink to ${WRITE_ONLY_KERNEL_FILE}, which root cannot read either)`,
    breakIt: (file) => {
      unlinkSync(file)
      symlinkSync(WRITE_ONLY_KERNEL_FILE, file)
      return `metrics file ${file} cannot be read (EACCES)`
    },
    clear: (file) => unlinkSync(file),
  }
}

function cases(dir: string): Case[] {
  const list: Case[] = [
    {
      name: 'replaced by a directory',
      breakIt: (file) => {
        unlinkSync(file)
        mkdirSync(file)
        return `metrics file ${file} is not a regular file`
      },
      clear: (file) => rmdirSync(file),
    },
    {
      name: 'replaced by a FIFO (answered at once, no writer needed)',
      breakIt: (file) => {
        unlinkSync(file)
        execFileSync('mkfifo', [file])
        return `metrics file ${file} is not a regular file`
      },
      clear: (file) => unlinkSync(file),
    },
    {
      name: 'replaced by a symlink loop',
      breakIt: (file) => {
        unlinkSync(file)
        const other = join(dir, 'loop.prom')
        symlinkSync(file, other)
        symlinkSync(other, file)
        return `metrics file ${file} cannot be read (ELOOP)`
      },
      clear: (file) => {
        unlinkSync(file)
        unlinkSync(join(dir, 'loop.prom'))
      },
    },
    {
      name: 'truncated to zero in place',
      breakIt: (file) => {
        truncateSync(file, 0)
        return `metrics file ${file} is empty`
      },
      clear: () => {},
    },
    {
      name: 'grown in place past the 16 MiB limit (16 MiB + 1 byte)',
      breakIt: (file) => {
        truncateSync(file, MAX_FILE_BYTES)
        appendFileSync(file, '\n')
        return `metrics file ${file} is larger than ${MAX_FILE_BYTES} bytes (${MAX_FILE_BYTES + 1})`
      },
      clear: () => {},
    },
  ]
  const unreadable = unreadableCase()
  if (unreadable !== undefined) list.push(unreadable)
  return list
}

async function metrics(port: number) {
  return parseResponse((await get(port)).data)
}

/** Replaces the file the way a collector does (rename), with `content`. */
function publish(file: string, content: string | Buffer): void {
  writeFileSync(`${file}.next`, content)
  renameSync(`${file}.next`, file)
}

t.test('each broken file is a 503 with its reason; the next scrape after the fix is a 200 with the new content', async (t: Test) => {
  const dir = t.testdir()
  const file = join(dir, 'metrics.prom')
  publish(file, 'runner_metrics_fixture 0\n')
  const cli = await startCli(t, ['--no-collector', '--metrics-file', file])
  t.equal((await metrics(cli.port)).status, 200)

  const all = cases(dir)
  if (all.length < 6) t.comment('cannot make a file unreadable on this machine: that case is skipped')
  let version = 0
  for (const { name, breakIt, clear } of all) {
    const reason = breakIt(file)
    const broken = await metrics(cli.port)
    t.equal(broken.status, 503, `${name}: 503`)
    t.equal(broken.headers['content-type'], 'text/plain; charset=utf-8', `${name}: plain text`)
    t.equal(broken.body.toString(), `${reason}\n`, `${name}: says why`)
    t.equal((await metrics(cli.port)).status, 503, `${name}: and stays 503 until fixed`)
    t.equal(parseResponse((await get(cli.port, '/healthz')).data).status, 200, `${name}: the process still serves`)

    clear(file)
    const content = `runner_metrics_fixture ${++version}\n`
    publish(file, content)
    const fixed = await metrics(cli.port)
    t.equal(fixed.status, 200, `${name}: fixed, the next scrape is a 200`)
    t.equal(fixed.body.toString(), content, `${name}: with the new content`)
  }

  // Each outage was logged once, when it began.
  const outageLines = cli.stderr().split('\n').filter((line) => line.endsWith('; answering 503 until it is fixed'))
  t.equal(outageLines.length, all.length, 'one log line per outage')
  t.equal((await cli.stop()).code, 0)
})

t.test('a file of exactly 16 MiB is served whole; one byte more is refused, one byte less served again', async (t: Test) => {
  const dir = t.testdir()
  const file = join(dir, 'metrics.prom')
  const line = 'runner_metrics_fixture_padding 1\n'
  const body = Buffer.alloc(MAX_FILE_BYTES, line)
  body[body.length - 1] = 0x0a
  publish(file, body)
  const cli = await startCli(t, ['--no-collector', '--metrics-file', file])
  const whole = await metrics(cli.port)
  t.equal(whole.status, 200)
  t.equal(whole.headers['content-length'], String(MAX_FILE_BYTES))
  t.ok(whole.body.equals(body), 'every byte of it')

  appendFileSync(file, 'x')
  const refused = await metrics(cli.port)
  t.equal(refused.status, 503)
  t.equal(refused.body.toString(), `metrics file ${file} is larger than ${MAX_FILE_BYTES} bytes (${MAX_FILE_BYTES + 1})\n`)

  truncateSync(file, MAX_FILE_BYTES - 1)
  const smaller = await metrics(cli.port)
  t.equal(smaller.status, 200, 'shrunk below the limit in place: served again')
  t.equal(smaller.body.length, MAX_FILE_BYTES - 1)
})

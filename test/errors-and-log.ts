import t from 'tap'
import { errnoCode, RunnerMetricsError } from '../src/errors.js'
import { createOnceLog, stderrLog } from '../src/log.js'

t.test('RunnerMetricsError carries a code and a cause', async (t) => {
  const cause = new Error('inner')
  const error = new RunnerMetricsError('ERR_INVALID_OPTION', 'bad', { cause })
  t.equal(error.code, 'ERR_INVALID_OPTION')
  t.equal(error.name, 'RunnerMetricsError')
  t.equal(error.cause, cause)
  t.type(error, Error)
})

t.test('errnoCode reads only string codes', async (t) => {
  t.equal(errnoCode(Object.assign(new Error('x'), { code: 'ENOENT' })), 'ENOENT')
  t.equal(errnoCode({ code: 42 }), undefined)
  t.equal(errnoCode(null), undefined)
  t.equal(errnoCode(undefined), undefined)
  t.equal(errnoCode('ENOENT'), undefined)
})

t.test('createOnceLog logs each kind once until cleared', async (t) => {
  const lines: string[] = []
  const log = createOnceLog((line) => lines.push(line))
  log.once('a', 'first a')
  log.once('a', 'second a')
  log.once('b', 'first b')
  log.clear('a')
  log.once('a', 'third a')
  t.same(lines, ['first a', 'first b', 'third a'])
})

t.test('stderrLog writes one prefixed line', async (t) => {
  const written: string[] = []
  const original = process.stderr.write
  process.stderr.write = ((chunk: string) => {
    written.push(chunk)
    return true
  }) as typeof process.stderr.write
  try {
    stderrLog('hello')
  } finally {
    process.stderr.write = original
  }
  t.same(written, ['runner-metrics: hello\n'])
})

import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { removeOwnTempFiles, writeFileAtomic } from '../src/atomic-write.js'

t.test('replaces the file with the new content and leaves no temp file', async (t) => {
  const dir = t.testdir({ 'metrics.prom': 'old\n' })
  const target = join(dir, 'metrics.prom')
  const before = statSync(target).ino
  t.same(await writeFileAtomic(target, 'new\n'), { inPlace: false })
  t.equal(readFileSync(target, 'utf8'), 'new\n')
  t.not(statSync(target).ino, before, 'a new inode: readers holding the old one keep the old content')
  t.same(readdirSync(dir), ['metrics.prom'])
  t.equal(statSync(target).mode & 0o777 & ~process.umask(), 0o644 & ~process.umask())
})

t.test('creates the file when it does not exist yet, from bytes too', async (t) => {
  const dir = t.testdir({})
  const target = join(dir, 'm.prom')
  await writeFileAtomic(target, Buffer.from('ä\n'))
  t.equal(readFileSync(target, 'utf8'), 'ä\n')
})

t.test('a failing write keeps the last good file and removes its temp file', async (t) => {
  const dir = t.testdir({ 'metrics.prom': 'good\n' })
  const target = join(dir, 'metrics.prom')
  const fs = await import('node:fs')
  const { writeFileAtomic: failingWrite } = await t.mockImport<typeof import('../src/atomic-write.js')>('../src/atomic-write.js', {
    'node:fs': {
      ...fs,
      fsyncSync: () => {
        throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })
      },
    },
  })
  await t.rejects(failingWrite(target, 'new\n'), { code: 'ENOSPC' })
  t.equal(readFileSync(target, 'utf8'), 'good\n')
  t.same(readdirSync(dir), ['metrics.prom'], 'no temp file left behind')
})

t.test('a rename into a missing directory fails cleanly', async (t) => {
  const dir = t.testdir({})
  await t.rejects(writeFileAtomic(join(dir, 'missing', 'm.prom'), 'x'), { code: 'ENOENT' })
  t.same(readdirSync(dir), [])
})

t.test('a rename over a directory fails and removes the temp file', async (t) => {
  const dir = t.testdir({ 'metrics.prom': { 'inner': 'x' } })
  await t.rejects(writeFileAtomic(join(dir, 'metrics.prom'), 'x'), { code: /EISDIR|ENOTEMPTY|EEXIST/ })
  t.same(readdirSync(dir), ['metrics.prom'])
})

t.test('EBUSY on rename (a bind-mounted file) falls back to rewriting in place', async (t) => {
  const dir = t.testdir({ 'metrics.prom': 'a much longer old content\n' })
  const target = join(dir, 'metrics.prom')
  const before = statSync(target).ino
  const fs = await import('node:fs')
  const { writeFileAtomic: busyWrite } = await t.mockImport<typeof import('../src/atomic-write.js')>('../src/atomic-write.js', {
    'node:fs': {
      ...fs,
      renameSync: () => {
        throw Object.assign(new Error('resource busy'), { code: 'EBUSY' })
      },
    },
  })
  t.same(await busyWrite(target, 'new\n'), { inPlace: true })
  t.equal(readFileSync(target, 'utf8'), 'new\n', 'rewritten and truncated')
  t.same(await busyWrite(target, Buffer.from('bytes\n')), { inPlace: true })
  t.equal(readFileSync(target, 'utf8'), 'bytes\n', 'bytes too')
  t.equal(statSync(target).ino, before, 'same inode: the bind mount still shows it')
  t.same(readdirSync(dir), ['metrics.prom'])
})

t.test('removeOwnTempFiles removes only this process\'s temp files for that target', async (t) => {
  const dir = t.testdir({})
  const target = join(dir, 'metrics.prom')
  const mine = [`.metrics.prom.${process.pid}.0.1.tmp`, `.metrics.prom.${process.pid}.3.7.tmp`]
  const others = ['metrics.prom', `.metrics.prom.${process.pid + 1}.0.1.tmp`, `.other.prom.${process.pid}.0.1.tmp`, `.metrics.prom.${process.pid}.0.1.keep`]
  for (const name of [...mine, ...others]) writeFileSync(join(dir, name), '')
  t.same(removeOwnTempFiles(target).sort(), mine.sort())
  t.same(readdirSync(dir).sort(), others.sort())
  t.same(removeOwnTempFiles(join(dir, 'gone', 'metrics.prom')), [], 'a missing directory is nothing to clean')
  mkdirSync(join(dir, 'sub'))
})

import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import * as fs from 'node:fs'
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { Reply } from '../src/server/response.js'
import { createSnapshot, type Snapshot } from '../src/server/snapshot.js'

const MTIME = 1_700_000_000

/** The body a GET would get, or the 503 reason line. */
function bodyOf(reply: Reply): string {
  const bytes = reply.bytes(false, false).toString('utf8')
  return bytes.slice(bytes.indexOf('\r\n\r\n') + 4)
}

function setup(t: Test, content?: string, maxFileBytes = 1024) {
  const dir = t.testdir(content === undefined ? {} : { 'metrics.prom': content })
  const path = join(dir, 'metrics.prom')
  const logs: string[] = []
  const snapshot = createSnapshot({ path, maxFileBytes, log: (message) => logs.push(message) })
  t.teardown(() => snapshot.close())
  return { dir, path, logs, snapshot }
}

/** Replaces `path` the way the collector does: write a temp file, rename it over. */
function replace(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content)
  renameSync(`${path}.tmp`, path)
}

/** Paths our process holds open. */
function openPaths(): string[] {
  const paths: string[] = []
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      paths.push(readlinkSync(`/proc/self/fd/${fd}`))
    } catch {
      // the fd readdir itself used, closed by now
    }
  }
  return paths
}

t.test('serves the file and reuses the same reply while the version is unchanged', async (t) => {
  const { snapshot } = setup(t, 'a_metric 1\n')
  const reply = snapshot.current()
  t.equal(reply.status, 200)
  t.equal(bodyOf(reply), 'a_metric 1\n')
  t.equal(snapshot.current(), reply, 'same version: the same ready-to-send reply')
})

t.test('only the version is checked: a change that keeps (dev, ino, size, mtime) is not read', async (t) => {
  const { path, snapshot } = setup(t, 'a_metric 1\n')
  // Whole seconds, so that setting the mtime back restores it exactly.
  utimesSync(path, MTIME, MTIME)
  t.equal(bodyOf(snapshot.current()), 'a_metric 1\n')
  writeFileSync(path, 'a_metric 2\n')
  utimesSync(path, MTIME, MTIME)
  t.equal(bodyOf(snapshot.current()), 'a_metric 1\n', 'the cached bytes, not a re-read')
  utimesSync(path, MTIME, MTIME + 1)
  t.equal(bodyOf(snapshot.current()), 'a_metric 2\n', 'a new mtime is a new version')
})

t.test('a rename makes the next call serve the new file', async (t) => {
  const { path, snapshot } = setup(t, 'a_metric 1\n')
  t.equal(bodyOf(snapshot.current()), 'a_metric 1\n')
  replace(path, 'a_metric 2\n')
  t.equal(bodyOf(snapshot.current()), 'a_metric 2\n', 'same size, new inode')
  replace(path, 'a_metric 300\n')
  t.equal(bodyOf(snapshot.current()), 'a_metric 300\n')
  writeFileSync(path, 'a_metric 4000\n')
  t.equal(bodyOf(snapshot.current()), 'a_metric 4000\n', 'rewritten in place, new size')
})

t.test('a new file that reuses a freed inode with the same size and mtime is still a new version', async (t) => {
  // ext4 hands a freed inode number to the next new file at once. The snapshot keeps the cached
  // version's fd open so its inode stays allocated and cannot come back under another file.
  const { path, snapshot } = setup(t, 'version A\n')
  utimesSync(path, MTIME, MTIME)
  const a = statSync(path)
  t.equal(bodyOf(snapshot.current()), 'version A\n')
  replace(path, 'version B\n')
  replace(path, 'version C\n')
  utimesSync(path, MTIME, MTIME)
  const c = statSync(path)
  t.equal(c.size, a.size)
  t.equal(c.mtimeMs, a.mtimeMs)
  t.not(c.ino, a.ino, 'the cached inode was not reused')
  t.equal(bodyOf(snapshot.current()), 'version C\n')
})

t.test('holds one fd, for the current version only, and close() releases it', async (t) => {
  const { path, snapshot } = setup(t, 'v 0\n')
  snapshot.current()
  const count = openPaths().length
  for (let i = 1; i <= 20; i++) {
    replace(path, `v ${i}\n`)
    t.equal(bodyOf(snapshot.current()), `v ${i}\n`)
  }
  t.equal(openPaths().length, count, 'no fd leaks across versions')
  t.equal(openPaths().filter((p) => p === path).length, 1, 'the current version is held open')
  snapshot.close()
  t.equal(openPaths().filter((p) => p === path).length, 0, 'close() releases it')
  snapshot.close()
  t.equal(bodyOf(snapshot.current()), 'v 20\n', 'usable again after close()')
})

t.test('a missing file is a 503 that says so, logged once, and recovers', async (t) => {
  const { path, logs, snapshot } = setup(t)
  const reply = snapshot.current()
  t.equal(reply.status, 503)
  t.equal(bodyOf(reply), `metrics file ${path} is not available yet (ENOENT)\n`)
  t.equal(snapshot.current(), reply, 'the same 503 is reused while the reason holds')
  t.same(logs, [`metrics file ${path} is not available yet (ENOENT); answering 503 until it is fixed`])

  replace(path, 'back 1\n')
  t.equal(bodyOf(snapshot.current()), 'back 1\n', 'recovers by itself')
  fs.unlinkSync(path)
  t.equal(snapshot.current().status, 503)
  t.equal(logs.length, 2, 'a new outage after a recovery is logged again')
  t.equal(openPaths().filter((p) => p.startsWith(path)).length, 0, 'a 503 holds no fd of the old version')
})

t.test('a directory, a FIFO or a symlink loop is a 503 with its reason', async (t) => {
  const { dir, path, logs, snapshot } = setup(t)
  mkdirSync(path)
  t.equal(bodyOf(snapshot.current()), `metrics file ${path} is not a regular file\n`, 'directory')
  fs.rmdirSync(path)

  execFileSync('mkfifo', [path])
  // Opening a FIFO with no writer would block forever without O_NONBLOCK; this returns at once.
  t.equal(bodyOf(snapshot.current()), `metrics file ${path} is not a regular file\n`, 'FIFO')
  fs.unlinkSync(path)

  symlinkSync(join(dir, 'loop-b'), path)
  symlinkSync(path, join(dir, 'loop-b'))
  t.equal(bodyOf(snapshot.current()), `metrics file ${path} cannot be read (ELOOP)\n`, 'symlink loop')
  fs.unlinkSync(path)

  t.equal(logs.length, 1, 'one outage, one log line, whatever the reasons')
  replace(path, 'fixed 1\n')
  t.equal(bodyOf(snapshot.current()), 'fixed 1\n', 'recovers')
})

t.test('a Unix socket (stat works, open fails) is a 503 with the open error', async (t) => {
  // A socket path must be short (108 bytes), shorter than tap's testdir paths.
  const dir = mkdtempSync(join(tmpdir(), 'rm-snapshot-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'metrics.prom')
  const server = createServer()
  server.listen(path)
  await once(server, 'listening')
  t.teardown(() => server.close())
  const snapshot = createSnapshot({ path, maxFileBytes: 1024, log: () => {} })
  t.equal(statSync(path).isSocket(), true)
  t.equal(bodyOf(snapshot.current()), `metrics file ${path} cannot be read (ENXIO)\n`)
})

t.test('an empty file is a 503, not an empty 200', async (t) => {
  const { path, snapshot } = setup(t, '')
  t.equal(bodyOf(snapshot.current()), `metrics file ${path} is empty\n`)
  replace(path, 'x 1\n')
  t.equal(snapshot.current().status, 200)
})

t.test('a file larger than maxFileBytes is a 503; one at the limit is served', async (t) => {
  const { path, snapshot } = setup(t, 'x'.repeat(1024))
  t.equal(snapshot.current().status, 200, 'exactly the limit')
  replace(path, 'x'.repeat(1025))
  t.equal(bodyOf(snapshot.current()), `metrics file ${path} is larger than 1024 bytes (1025)\n`)
  replace(path, 'x 1\n')
  t.equal(bodyOf(snapshot.current()), 'x 1\n')
})

t.test('a read error is a 503 and closes the fd; a file that shrinks mid-read serves what was read', async (t) => {
  let readFails = true
  let shortReads = 0
  const { createSnapshot: createMocked } = await t.mockImport<typeof import('../src/server/snapshot.js')>(
    '../src/server/snapshot.js',
    {
      'node:fs': {
        ...fs,
        readSync: (fd: number, buffer: Buffer, offset: number, _length: number, position: number) => {
          if (readFails) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' })
          // Hand out the file 3 bytes per call, then pretend it ended early.
          if (++shortReads > 2) return 0
          return fs.readSync(fd, buffer, offset, 3, position)
        },
      },
    },
  )
  const dir = t.testdir({ 'metrics.prom': 'abcdefghij\n' })
  const path = join(dir, 'metrics.prom')
  const logs: string[] = []
  const snapshot: Snapshot = createMocked({ path, maxFileBytes: 1024, log: (m) => logs.push(m) })
  t.teardown(() => snapshot.close())

  t.equal(bodyOf(snapshot.current()), `metrics file ${path} cannot be read (EIO)\n`)
  t.equal(openPaths().filter((p) => p === path).length, 0, 'the fd was closed')
  readFails = false
  const reply = snapshot.current()
  t.equal(bodyOf(reply), 'abcdef', 'the bytes that were there')
  t.match(reply.bytes(true, false).toString(), /Content-Length: 6\r\n/)
  t.equal(logs.length, 1)
})

import { readFileSync } from 'node:fs'
import t from 'tap'
import { VERSION } from '../src/version.js'

t.test('the version constant is the package version', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  t.equal(VERSION, pkg.version)
})

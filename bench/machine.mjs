// What the numbers were measured on: absolute figures move from machine to machine.

import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'

export function describeMachine(tools) {
  return {
    cpuModel: cpuModel(),
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
    autocannon: packageVersion('autocannon'),
    nginx: tools.nginx ? versionOf(tools.nginx, ['-v'], /nginx\/(\S+)/) : null,
    wrk: tools.wrk ? versionOf(tools.wrk, ['-v'], /wrk (\S+)/) : null,
    netcat: tools.nc ? versionOf(tools.nc, ['-h'], /^(OpenBSD netcat.*?)$/m) : null,
  }
}

function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m) return m[1].trim()
  } catch {
    // Not Linux.
  }
  return os.cpus()[0]?.model ?? 'unknown'
}

function packageVersion(name) {
  try {
    return createRequire(import.meta.url)(`${name}/package.json`).version
  } catch {
    return null
  }
}

/** Tools print their version on stderr and often exit non-zero for -v/-h: read both streams. */
function versionOf(file, args, pattern) {
  const result = spawnSync(file, args, { encoding: 'utf8', timeout: 5000 })
  const text = `${result.stdout ?? ''}${result.stderr ?? ''}`
  const m = pattern.exec(text)
  return m ? m[1].trim() : text.trim().split('\n')[0] || null
}

// The servers the bench compares, each started on 127.0.0.1 and stopped by its owner:
// ours, the spike's netcat loop, nginx and a plain node:http server.

import { accessSync, constants, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnTracked, stopTracked } from './processes.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const startTimeoutMs = 10_000

/** The path of an executable on PATH (or in the sbin dirs, where Debian puts nginx), or null. */
export function findExecutable(name) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin']
  for (const dir of dirs.filter(Boolean)) {
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // Not here.
    }
  }
  return null
}

export async function freePort() {
  const server = createServer()
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * Starts a peer on a port that was free a moment ago; another process on this shared machine
 * may take it in between, so a failed start is tried again on a new port.
 */
export async function onFreePort(start, attempts = 3) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await freePort())
    } catch (error) {
      if (attempt >= attempts) throw error
    }
  }
}

/**
 * Ours: `node dist/cli.js serve`, ready when it prints its start line. `stop()` sends SIGTERM
 * and returns the served counts from its stop line.
 */
export async function startOurs({ cli, port, metricsFile, jobsLog, interval = 30 }) {
  const args = [
    cli,
    'serve',
    '--host', '127.0.0.1',
    '--port', String(port),
    '--metrics-file', metricsFile,
    '--jobs-log', jobsLog,
    '--interval', String(interval),
    '--runner-name', 'bench-runner',
  ]
  const child = spawnTracked(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  const stderr = collect(child.stderr)
  await waitFor(child, () => /runner-metrics: serving /.test(stderr.text), 'ours (its start line)', stderr)
  return {
    name: 'ours',
    pid: child.pid,
    port,
    url: `http://127.0.0.1:${port}/metrics`,
    stderr,
    async stop() {
      const exit = await stopTracked(child)
      const m = /served (\d+) responses \((\d+) 200 OK\)/.exec(stderr.text)
      return { exit, served: m ? Number(m[1]) : null, served200: m ? Number(m[2]) : null, stderr: stderr.text.trim() }
    },
  }
}

/**
 * The spike's netcat loop exactly as it wrote it (docs: metrics-server.sh), with only its port
 * and file made parameters. netcat-openbsd keeps the connection open after stdin ends, so the
 * first client hangs until its timeout and `nc -k` answers later clients with nothing.
 */
export async function startNetcatLoop({ port, metricsFile, dir }) {
  const script = join(dir, 'metrics-server.sh')
  writeFileSync(
    script,
    `#!/bin/bash
# Netcat-based Prometheus metrics HTTP server
# Serves /tmp/metrics.prom on port 9091

PORT="${port}"
METRICS_FILE="${metricsFile}"

# Initialize empty metrics file
touch "$METRICS_FILE"

# HTTP server loop
while true; do
    {
        echo "HTTP/1.1 200 OK"
        echo "Content-Type: text/plain; version=0.0.4"
        echo "Connection: close"
        echo ""
        cat "$METRICS_FILE" 2>/dev/null || echo "# No metrics available"
    } | nc -l -k -p "$PORT" 2>/dev/null || {
        echo "[ERROR] Metrics server failed, restarting in 5s..." >&2
        sleep 5
    }
done
`,
  )
  // nc prints what clients send on its stdout: discard it.
  const child = spawnTracked('bash', [script], { group: true, stdio: ['ignore', 'ignore', 'pipe'] })
  const stderr = collect(child.stderr)
  // Probing with a connection would consume the loop's one response: watch the socket table.
  await waitFor(child, () => isListening(port), 'the netcat loop (listening)', stderr)
  return {
    name: 'netcat',
    pid: child.pid,
    port,
    url: `http://127.0.0.1:${port}/metrics`,
    async stop() {
      const exit = await stopTracked(child)
      return { exit, served: null, served200: null, stderr: stderr.text.trim() }
    },
  }
}

/** nginx with a generated config: 1 worker, no keep-alive, no access log, all state in `dir`. */
export async function startNginx({ nginx, port, metricsFile, dir }) {
  // The worker runs as an unprivileged user when the master is root: it must reach the file
  // (makeTempDir leaves the bench's temp dir traversable for this).
  const conf = join(dir, 'nginx.conf')
  writeFileSync(
    conf,
    `worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'nginx-error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_timeout 0;
  sendfile on;
  client_body_temp_path ${join(dir, 'client_body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  server {
    listen 127.0.0.1:${port};
    location = /metrics {
      default_type "text/plain; version=0.0.4; charset=utf-8";
      alias ${metricsFile};
    }
    location = /nginx_status { stub_status; }
  }
}
`,
  )
  const child = spawnTracked(nginx, ['-c', conf, '-p', dir], { group: true, stdio: ['ignore', 'ignore', 'pipe'] })
  const stderr = collect(child.stderr)
  await waitFor(child, () => isListening(port), 'nginx (listening)', stderr)
  const statusUrl = `http://127.0.0.1:${port}/nginx_status`
  const before = await nginxRequests(statusUrl)
  return {
    name: 'nginx',
    pid: child.pid,
    port,
    url: `http://127.0.0.1:${port}/metrics`,
    async stop() {
      // stub_status counts the status request itself: the served count is the difference less one.
      const after = await nginxRequests(statusUrl).catch(() => null)
      const exit = await stopTracked(child, { signal: 'SIGQUIT' })
      let errorLog = ''
      try {
        errorLog = readFileSync(join(dir, 'nginx-error.log'), 'utf8').trim()
      } catch {
        // No log written.
      }
      const served = after === null ? null : after - before - 1
      return { exit, served, served200: null, stderr: [stderr.text.trim(), errorLog].filter(Boolean).join('\n') }
    },
  }
}

/** A plain node:http server that reads the file on every request (what most Node exporters do). */
export async function startNodeHttp({ port, metricsFile }) {
  const child = spawnTracked(process.execPath, [join(here, 'node-http-peer.mjs'), String(port), metricsFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const stderr = collect(child.stderr)
  await waitFor(child, () => /listening/.test(stderr.text), 'node:http (its start line)', stderr)
  return {
    name: 'node:http',
    pid: child.pid,
    port,
    url: `http://127.0.0.1:${port}/metrics`,
    async stop() {
      const exit = await stopTracked(child)
      const m = /served (\d+) responses \((\d+) 200 OK\)/.exec(stderr.text)
      return { exit, served: m ? Number(m[1]) : null, served200: m ? Number(m[2]) : null, stderr: '' }
    },
  }
}

async function nginxRequests(url) {
  const response = await fetch(url, { headers: { connection: 'close' } })
  const text = await response.text()
  const m = /\n\s*(\d+)\s+(\d+)\s+(\d+)\s*\n/.exec(text)
  if (!m) throw new Error(`unexpected nginx stub_status: ${text}`)
  return Number(m[3])
}

/** True when something listens on 127.0.0.1:port or on all interfaces (IPv4 or IPv6). */
export function isListening(port) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0')
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try {
      text = readFileSync(table, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/)
      // fields[1] is local_address "ADDR:PORT", fields[3] is the state; 0A is LISTEN.
      if (fields[3] === '0A' && fields[1]?.endsWith(`:${hexPort}`)) return true
    }
  }
  return false
}

function collect(stream) {
  const sink = { text: '' }
  stream?.setEncoding('utf8')
  stream?.on('data', (chunk) => {
    sink.text += chunk
  })
  return sink
}

/** Polls `ready()` until it holds; fails if the child exits or fails to spawn first, or on timeout. */
async function waitFor(child, ready, what, stderr) {
  let failure = null
  child.once('error', (error) => {
    failure = error
  })
  const deadline = Date.now() + startTimeoutMs
  while (!ready()) {
    if (failure) throw new Error(`could not start ${what}: ${failure.message}`)
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited before it was ready (code ${child.exitCode}, signal ${child.signalCode}): ${stderr.text.trim()}`)
    }
    if (Date.now() > deadline) {
      await stopTracked(child)
      throw new Error(`${what} was not ready within ${startTimeoutMs / 1000} s`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

// The report a person reads: plain aligned columns, one section per measurement.

export function renderReport(results) {
  const { machine, scrape, overhead, collector, verdicts, metricsFile } = results
  const out = []
  out.push(`runner-metrics bench${results.quick ? ' (quick mode)' : ''}, ${results.finishedAt}`)
  out.push(
    `machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.kernel}; load average at start ${machine.loadAverage.join(' ')}, at end ${results.loadAverageAtEnd.join(' ')}`,
  )
  out.push(
    `tools: node ${machine.node}, autocannon ${machine.autocannon}, wrk ${machine.wrk ?? 'missing'}, nginx ${machine.nginx ?? 'missing'}, netcat ${machine.netcat ?? 'missing'}`,
  )
  out.push(`served file: ${metricsFile.bytes} bytes, rendered by our collector from ${metricsFile.jobs} jobs (${metricsFile.lines} log lines)`)
  for (const s of scrape.skipped) out.push(`skipped ${s.peer}: ${s.reason}`)
  for (const f of scrape.failed) out.push(`FAILED ${f.peer} (${f.stage}): ${f.error}`)
  out.push('')

  out.push(
    `Scrape load: autocannon (corrected for closing servers), ${scrape.connections} connections, one connection per request, ` +
      `${scrape.seconds} s x ${scrape.runs} run(s), ${scrape.timeoutSeconds} s timeout; medians, max of max, sums of counts`,
  )
  const peers = Object.entries(scrape.autocannon)
  out.push(
    ...table(
      ['server', 'req/s', 'p50 ms', 'p99 ms', 'max ms', '2xx', 'non-2xx', 'errors', 'timeouts', 'served'],
      peers.map(([name, r]) => [
        name,
        fmt(r.requestsPerSecond, 0),
        fmt(r.latencyMs.p50, 2),
        fmt(r.latencyMs.p99, 2),
        fmt(r.latencyMs.max, 1),
        r.status2xx,
        r.non2xx,
        r.errors,
        r.timeouts,
        r.served ?? 'n/a',
      ]),
    ),
  )
  const netcat = scrape.autocannon.netcat
  if (netcat && netcat.responses === 0) {
    out.push(
      `netcat: no response completed; ${netcat.wire.connectionsWithData} of ${netcat.wire.connectionsOpened} connections received any bytes ` +
        `(${netcat.wire.bytesReceived} in all) and none was closed by the server: every request ended in the ${scrape.timeoutSeconds} s timeout`,
    )
  }
  out.push('')

  if (Object.keys(scrape.wrk).length > 0) {
    out.push(`Throughput: wrk -t2 -c${scrape.connections} -H 'Connection: close', ${scrape.seconds} s x ${scrape.runs} run(s); medians`)
    out.push(
      ...table(
        ['server', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'requests', 'socket errors', 'non-2xx', 'served'],
        Object.entries(scrape.wrk).map(([name, r]) => [
          name,
          fmt(r.requestsPerSecond, 0),
          fmt(r.latencyMs.p50, 2),
          fmt(r.latencyMs.p99, 2),
          fmt(r.latencyMs.max, 1),
          r.requests,
          r.socketErrors,
          r.non2xx,
          r.served ?? 'n/a',
        ]),
      ),
    )
    out.push('')
  }

  out.push('Ratios, ours / peer (req/s: higher is better for ours; p99: lower is better for ours)')
  for (const [peer, r] of Object.entries(verdicts.ratios)) {
    if (r.note) out.push(`  ours / ${peer}: ${r.note}`)
    else {
      const wrk = r.wrkRequestsPerSecond === undefined ? '' : `, wrk req/s ${r.wrkRequestsPerSecond}x`
      out.push(`  ours / ${peer}: req/s ${r.requestsPerSecond}x, p99 ${r.p99 ?? 'n/a'}x${wrk}`)
    }
  }
  out.push('')

  out.push(
    `Overhead: serve --interval ${overhead.interval} (collection every second), ${overhead.scraped.seconds} s window after start-up; ` +
      `scraped once a second (gzip, new connection) vs idle`,
  )
  out.push(
    ...table(
      ['run', 'CPU %', 'CPU s', 'RSS peak MB', 'RSS end MB', 'anon MB', 'file MB', 'PSS MB', 'start-up CPU s', 'scrapes', 'scrape p99 ms'],
      [overhead.scraped, overhead.idle].map((r) => [
        r.name,
        fmt(r.cpuPercent, 3),
        fmt(r.cpuSeconds, 2),
        fmt(r.rssPeakMB, 1),
        fmt(r.rssEndMB, 1),
        fmt(r.rssAnonEndMB, 1),
        fmt(r.rssFileEndMB, 1),
        fmt(r.pssEndMB, 1),
        fmt(r.startup.cpuSeconds, 2),
        r.scrapes.count ? `${r.scrapes.ok}/${r.scrapes.count}` : '0',
        r.scrapes.latencyMs ? fmt(r.scrapes.latencyMs.p99, 2) : '-',
      ]),
    ),
  )
  out.push(
    '  anon: private memory (heaps, stacks); file: mapped files, mostly the node binary, shared by every Node process; ' +
      'PSS: shared pages divided among the processes that map them',
  )
  const floor = overhead.nodeFloor
  if (floor) {
    out.push(
      `  the floor on this machine: a bare node process ${floor.bare.rss} MB RSS (${floor.bare.anon} anon, ${floor.bare.file} file); ` +
        `with one idle worker thread ${floor.withWorker.rss} MB (${floor.withWorker.anon} anon, ${floor.withWorker.file} file)`,
    )
  }
  out.push('')

  out.push(`Collector cost: cold \`collect\` (a new process; median of ${collector.cold.results[0]?.runs.length ?? 0})`)
  out.push(
    ...table(
      ['log lines', 'log MB', 'wall s', 'collection s', 'peak RSS MB'],
      collector.cold.results.map((r) => [r.lines, fmt(r.logMB, 1), fmt(r.wallSeconds, 3), fmt(r.collectorSeconds, 3), fmt(r.peakRssMB, 1)]),
    ),
  )
  const inc = collector.incremental
  out.push(
    `incremental: ${inc.appendedLines} lines appended to ${inc.baseLines}: collection ${fmt(ms(inc.collectorSeconds), 2)} ms ` +
      `(median of ${inc.runs.length}); the first, cold collection of that log in the same process: ${fmt(ms(inc.firstCollectionSeconds), 1)} ms`,
  )
  out.push('')

  for (const [title, items] of [
    ['Budgets (a miss fails the bench)', verdicts.budgets],
    ['Targets', verdicts.targets],
    ['Checks', verdicts.checks],
  ]) {
    out.push(title)
    for (const v of items) {
      const mark = v.pass === null ? 'n/a ' : v.pass ? 'pass' : 'MISS'
      const value = v.value === null ? (v.note ?? '') : `${v.value}${v.unit && v.unit !== 'x' ? ` ${v.unit}` : v.unit ?? ''}`
      out.push(`  [${mark}] ${v.name}: ${value}`)
    }
  }
  return out.join('\n')
}

function table(header, rows) {
  const cells = [header, ...rows.map((row) => row.map(String))]
  const widths = header.map((_, i) => Math.max(...cells.map((row) => row[i].length)))
  return cells.map((row) => '  ' + row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '))
}

function fmt(value, digits) {
  return value === null || value === undefined ? '-' : value.toFixed(digits)
}

function ms(seconds) {
  return seconds === null || seconds === undefined ? null : seconds * 1000
}

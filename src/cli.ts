#!/usr/bin/env node
// The executable: hands argv and the environment to the commands and turns SIGTERM/SIGINT into
// a graceful stop. Everything testable lives in commands.ts.

import { main } from './commands.js'
import { stderrLog } from './log.js'

function waitForStop(): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (signal: string): void => {
      process.off('SIGTERM', onSignal)
      process.off('SIGINT', onSignal)
      resolve(signal)
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  })
}

process.exitCode = await main(process.argv.slice(2), process.env, {
  log: stderrLog,
  stdout: (text) => process.stdout.write(text),
  waitForStop,
})

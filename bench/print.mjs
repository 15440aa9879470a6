// Prints the table of a results file again: `node bench/print.mjs [bench/results/latest.json]`.

import { readFileSync } from 'node:fs'
import { renderReport } from './table.mjs'

const file = process.argv[2] ?? new URL('./results/latest.json', import.meta.url)
process.stdout.write(renderReport(JSON.parse(readFileSync(file, 'utf8'))) + '\n')

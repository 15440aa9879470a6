// What grew between two V8 heap snapshots of the same thread, by node type and name. V8's own
// compiled code and its bookkeeping (types code, hidden, object shape) grow for a long time as
// ever more functions get optimized; that is bounded by the program. Everything else (objects,
// closures, arrays, strings, numbers, native objects such as sockets) is data the program keeps
// alive: growth there is a leak.

import { readFileSync } from 'node:fs'

const RUNTIME_TYPES = new Set(['code', 'hidden', 'object shape', 'synthetic'])
const STRING_TYPES = new Set(['string', 'concatenated string', 'sliced string'])

/** Self size and count per "type:name" of one .heapsnapshot file. */
export function heapCensus(path) {
  const snapshot = JSON.parse(readFileSync(path, 'utf8'))
  const { node_fields: fields, node_types: [types] } = snapshot.snapshot.meta
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((field) => fields.indexOf(field))
  const census = new Map()
  for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
    const type = types[snapshot.nodes[i + typeAt]]
    // Strings and numbers are named by their value: one row each, not one per value.
    const name = STRING_TYPES.has(type) || type === 'number' ? '' : snapshot.strings[snapshot.nodes[i + nameAt]].slice(0, 60)
    const key = `${type}:${name}`
    const entry = census.get(key) ?? { type, count: 0, bytes: 0 }
    entry.count++
    entry.bytes += snapshot.nodes[i + sizeAt]
    census.set(key, entry)
  }
  return census
}

/** Growth from `before` to `after`: the program's data and V8's runtime apart, the largest rows of the data. */
export function heapGrowth(before, after, rows = 5) {
  const changes = []
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    const was = before.get(key) ?? { count: 0, bytes: 0 }
    const is = after.get(key) ?? { count: 0, bytes: 0 }
    if (was.bytes !== is.bytes || was.count !== is.count) changes.push({ key, runtime: RUNTIME_TYPES.has(is.type ?? was.type), bytes: is.bytes - was.bytes, count: is.count - was.count })
  }
  const sum = (list) => list.reduce((total, change) => total + change.bytes, 0)
  const data = changes.filter((change) => !change.runtime)
  return {
    dataBytes: sum(data),
    runtimeBytes: sum(changes.filter((change) => change.runtime)),
    largestData: data.sort((a, b) => b.bytes - a.bytes).slice(0, rows),
  }
}

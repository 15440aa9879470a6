// Fuzzing the request parser and the live endpoint with seeded random and mutated heads
// (FUZZ_SEED replays a run; bench/fuzz.mjs runs the same inputs far longer against the CLI).
// Every input must get exactly the answer the parser gives the whole input at once, whatever
// pieces it arrives in, as one well-formed response and a FIN, or, for a head that never
// completes, a clean close.
import t from 'tap'
import { findHeadEnd, parseRequest, parseRequestLine } from '../src/server/request.js'
import { BAD_REQUEST, HEADERS_TOO_LARGE, HEALTHZ, INDEX, METHOD_NOT_ALLOWED, MetricsReply, NOT_FOUND } from '../src/server/response.js'
import { hostileEndpoint, METRICS } from './fixtures/hostile-clients.js'
import { createRandom, describeInput, expectedAnswer, fuzzInput, sendInput, type ExpectedAnswer } from './fixtures/hostile-fuzz.mjs'
import { whileScraping } from './fixtures/hostile-scrape.js'
import { readResponse } from './fixtures/hostile-wire.mjs'
import { connectTo, exchange } from './fixtures/http-client.js'

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed2)
const PARSER = { findHeadEnd, parseRequest, parseRequestLine }
const INPUTS = 3000

t.test(`the parser (seed ${SEED}): the request line alone never contradicts the whole head`, async (t) => {
  const random = createRandom(SEED)
  const problems: string[] = []
  let decided = 0
  for (let round = 0; round < 5000; round++) {
    const input = fuzzInput(random)
    const { bytes } = input
    const limit = Math.min(bytes.length, 8192)
    const end = findHeadEnd(bytes, 0, limit)
    const line = parseRequestLine(bytes, 0, limit)
    // Searching from any offset before the line end finds the same line.
    const lf = bytes.indexOf(0x0a)
    const from = lf > 0 ? Math.floor(random() * lf) : 0
    if (JSON.stringify(parseRequestLine(bytes, from, limit)) !== JSON.stringify(line)) problems.push(`from ${from}: ${describeInput(input)}`)
    if (end === -1) continue
    decided++
    const whole = parseRequest(bytes, end)
    const agrees =
      line !== undefined &&
      (whole.ok ? line.ok && line.route === whole.route && line.headOnly === whole.headOnly : !line.ok && line.status === whole.status)
    if (!agrees) problems.push(`${JSON.stringify(line)} vs ${JSON.stringify(whole)}: ${describeInput(input)}`)
  }
  t.same(problems.slice(0, 5), [], `${decided} complete heads: the line's verdict is the head's`)
  t.equal(parseRequestLine(Buffer.from('GET / HTTP/1.1\r\n'), 0, 10), undefined, 'a line end past the limit is not there yet')
})

t.test(`the live endpoint (seed ${SEED}): each input gets the parser's answer or a clean close`, { timeout: 15000 }, async (t) => {
  const { port, endpoint, logs } = await hostileEndpoint(t, { headTimeoutMs: 300 })
  const metrics = new MetricsReply(Buffer.from(METRICS))
  const fixed = { index: INDEX, healthz: HEALTHZ, 'not-found': NOT_FOUND } as const
  const errors: Record<number, Buffer> = {
    400: BAD_REQUEST.bytes(false, false),
    405: METHOD_NOT_ALLOWED.bytes(false, false),
    431: HEADERS_TOO_LARGE.bytes(false, false),
  }
  const bytesOf = ({ status, route, headOnly = false, gzip = false }: ExpectedAnswer): Buffer =>
    status === 0
      ? Buffer.alloc(0)
      : route === undefined
        ? errors[status]!
        : route === 'metrics'
          ? metrics.bytes(headOnly, gzip)
          : fixed[route].bytes(headOnly, false)

  const random = createRandom(SEED)
  const inputs = Array.from({ length: INPUTS }, () => fuzzInput(random))
  const problems: string[] = []
  const statuses: Record<number, number> = {}
  const { scrapes } = await whileScraping(t, port, 'during the fuzz run', async () => {
    let next = 0
    const lane = async (): Promise<void> => {
      while (next < inputs.length) {
        const input = inputs[next++]!
        const expected = expectedAnswer(input.bytes, input.ends, PARSER)
        statuses[expected.status] = (statuses[expected.status] ?? 0) + 1
        const client = await connectTo(port)
        const done = exchange(client)
        await sendInput(client, input)
        const result = await done
        const wellFormed = expected.status === 0 ? undefined : readResponse(result.data, { headOnly: expected.headOnly ?? false }).problem
        const problem =
          result.error !== undefined
            ? `${result.error.code}`
            : !result.ended
              ? 'no FIN'
              : wellFormed ?? (result.data.equals(bytesOf(expected)) ? undefined : `not the ${expected.status} expected`)
        if (problem !== undefined) {
          problems.push(`${problem}: got ${JSON.stringify(result.data.toString('latin1', 0, 40))} for ${describeInput(input)}`)
        }
      }
    }
    await Promise.all(Array.from({ length: 16 }, lane))
  })
  t.same(problems.slice(0, 5), [], `${INPUTS} inputs, each answered as the parser says (${problems.length} not)`)
  t.comment(`expected statuses: ${JSON.stringify(statuses)}`)
  for (const status of [0, 200, 400, 404, 405, 431]) t.ok(statuses[status]! > 0, `inputs for ${status || 'no answer'} came up`)
  const answered = INPUTS - (statuses[0] ?? 0)
  t.equal(endpoint.stats().responses, answered + scrapes, 'one response per answered input, no more')
  t.equal(endpoint.stats().open, 0, 'none left open')
  t.same(logs, [], 'nothing logged')
})

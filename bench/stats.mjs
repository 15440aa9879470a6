// Small numeric helpers shared by the bench modules.

/** p50 / p99 / max / mean over raw samples (nearest-rank), or nulls when there are none. */
export function summarize(samples, digits = 3) {
  if (samples.length === 0) return { p50: null, p99: null, max: null, mean: null }
  const sorted = Float64Array.from(samples).sort()
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]
  const mean = sorted.reduce((sum, x) => sum + x, 0) / sorted.length
  return { p50: round(at(0.5), digits), p99: round(at(0.99), digits), max: round(sorted[sorted.length - 1], digits), mean: round(mean, digits) }
}

/** The median of the numbers among `values` (nulls ignored), or null. */
export function median(values) {
  const xs = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (xs.length === 0) return null
  const mid = xs.length >> 1
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2
}

export function round(x, digits) {
  if (x === null || x === undefined) return null
  const f = 10 ** digits
  return Math.round(x * f) / f
}

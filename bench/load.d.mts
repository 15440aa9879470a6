// Types for the parts of load.mjs the tests import.

export interface LatencySummary {
  p50: number | null
  p99: number | null
  max: number | null
  mean: number | null
}

export interface AutocannonRun {
  tool: 'autocannon'
  corrected: boolean
  connections: number
  seconds: number
  timeoutSeconds: number
  responses: number
  requestsPerSecond: number
  latencyMs: LatencySummary
  status2xx: number
  non2xx: number
  errors: number
  timeouts: number
  wire: { connectionsOpened: number; connectionsWithData: number; bytesReceived: number } | null
  drainSeconds: number | null
}

export function runAutocannon(options: {
  url: string
  seconds: number
  connections?: number
  timeoutSeconds?: number
  headers?: Record<string, string>
  corrected?: boolean
}): Promise<AutocannonRun>

// Every error this program raises on purpose carries a code, so callers branch on the code
// and users can search for it; the message says what happened and what to do.

export type ErrorCode =
  | 'ERR_INVALID_OPTION'
  | 'ERR_UNKNOWN_OPTION'
  | 'ERR_METRICS_DIR_NOT_WRITABLE'
  | 'ERR_PORT_IN_USE'
  | 'ERR_LISTEN'
  | 'ERR_WORKER_START'
  | 'ERR_WORKER_PROTOCOL'
  | 'ERR_EXPOSITION_INVALID'
  | 'ERR_JOB_LOG_READ'
  | 'ERR_METRICS_WRITE'

export class RunnerMetricsError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'RunnerMetricsError'
    this.code = code
  }
}

/** The errno code of a Node system error (`ENOENT`, `EACCES`, ...), or `undefined`. */
export function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

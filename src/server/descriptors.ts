// Whether this process is out of file descriptors. Out of them, accept() fails with EMFILE, and
// libuv answers with its spare descriptor: it frees it, accepts each waiting connection and
// closes it at once, and takes the spare back, all without telling Node. So connections are
// dropped in silence, and the endpoint has to ask: opening /dev/null is the cheapest question.
import { closeSync, openSync } from 'node:fs'
import { errnoCode } from '../errors.js'

/** 'EMFILE' (this process) or 'ENFILE' (the whole system) when no descriptor is free now, else undefined. */
export function descriptorShortage(): 'EMFILE' | 'ENFILE' | undefined {
  try {
    closeSync(openSync('/dev/null', 'r'))
    return undefined
  } catch (error) {
    const code = errnoCode(error)
    // Any other failure (no /dev/null in a bare chroot) says nothing about descriptors.
    return code === 'EMFILE' || code === 'ENFILE' ? code : undefined
  }
}

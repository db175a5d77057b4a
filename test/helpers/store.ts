/** What the store tests build their inputs with. */
import { createHash, randomBytes } from 'node:crypto'
import type { LogTarget, OutgoingMessage } from '../../types/index.js'

/** SHA-256, hex: the form in which the plugin hands tokens to the store. */
export function sha256 (s: string): string {
  return createHash('sha256').update(s).digest('hex')
}

/** A message as the delivery core hands it to `publish` (the wire JSON of an app message to `target`). */
export function outgoing (target: LogTarget, data: unknown, ts: number): OutgoingMessage {
  const id = 'm-' + randomBytes(6).toString('hex')
  return { id, ts, json: JSON.stringify({ id, type: 'message', from: null, room: null, to: null, data, ts }), target }
}

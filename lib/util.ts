/** Small helpers shared by the routes, the decorator and the delivery core. */
import * as crypto from 'node:crypto'
import { createHash, randomBytes } from 'node:crypto'
import { ROOM_PATTERN } from './wire.js'

/** A public session id: 128 random bits, base64url (22 characters). Independent of the token. */
export function newSessionId (): string {
  return randomBytes(16).toString('base64url')
}

/** A bearer token: 256 random bits from the CSPRNG, base64url (43 characters). */
export function newToken (): string {
  return randomBytes(32).toString('base64url')
}

/** What the store keeps instead of the token: SHA-256, hex. */
export function hashToken (token: string): string {
  return oneShotHash !== undefined
    ? oneShotHash('sha256', token, 'hex')
    : createHash('sha256').update(token).digest('hex')
}

/** `crypto.hash` (Node >= 20.12): one call, no Hash object per request. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash

const BEARER = /^Bearer ([A-Za-z0-9_-]{16,256})$/

/** The token of an `authorization: Bearer …` header, or null when it is missing or malformed. */
export function bearerToken (header: string | undefined): string | null {
  if (typeof header !== 'string') return null
  const match = BEARER.exec(header)
  return match === null ? null : match[1]
}

/** UTF-8 byte length of a JSON text. */
export function jsonBytes (json: string): number {
  return Buffer.byteLength(json, 'utf8')
}

/**
 * Whether `value` nests arrays and objects deeper than `max` levels (a scalar is depth 0, `[]`
 * depth 1). Iterative, so a hostile document cannot overflow the stack.
 */
export function nestedDeeperThan (value: unknown, max: number): boolean {
  if (value === null || typeof value !== 'object') return false
  const stack: Array<[object, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [object, number]
    if (depth > max) return true
    const children = Array.isArray(node) ? node : Object.values(node)
    for (const child of children) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1])
    }
  }
  return false
}

/** Generates message ids unique across instances: a random instance prefix and a counter. */
export function idGenerator (): () => string {
  const prefix = randomBytes(6).toString('base64url')
  let counter = 0
  return () => prefix + '-' + (++counter).toString(36)
}

/** `ROOM_PATTERN` of wire.ts, for the decorator's own checks. */
export const ROOM_REGEX = new RegExp(ROOM_PATTERN)
const CURSOR = /^(0|[1-9][0-9]{0,14})$/

/** Parses a cursor from the query; undefined when absent, NaN when malformed. */
export function parseCursor (cursor: string | undefined): number | null {
  if (cursor === undefined) return null
  return CURSOR.test(cursor) ? Number(cursor) : NaN
}

/**
 * lib/util.ts: tokens are kept as SHA-256, hex, through `crypto.hash` where Node has it
 * (>= 20.12) and through `createHash` on the older Node 20 releases the package supports.
 */
import * as crypto from 'node:crypto'
import t from 'tap'
import { hashToken } from '../lib/util.js'

// SHA-256 of "abc" (FIPS 180-2, appendix B.1).
const ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'

t.test('hashToken is SHA-256, hex', async (t) => {
  t.equal(hashToken('abc'), ABC)
  const token = crypto.randomBytes(32).toString('base64url')
  t.equal(hashToken(token), crypto.createHash('sha256').update(token).digest('hex'))
})

t.test('hashToken without crypto.hash (Node < 20.12): the same hash through createHash', async (t) => {
  let created = 0
  const olderCrypto = {
    ...crypto,
    hash: undefined,
    createHash: (algorithm: string) => {
      created++
      return crypto.createHash(algorithm)
    }
  }
  const util = t.mockRequire<typeof import('../lib/util.js')>('../lib/util.js', { 'node:crypto': olderCrypto })
  t.equal(util.hashToken('abc'), ABC)
  t.equal(created, 1, 'through createHash')
})

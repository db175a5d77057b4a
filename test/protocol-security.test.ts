/**
 * PROTOCOL.md, "Session": tokens are unguessable and unique, ids are never accepted where a token
 * is required, ids do not reveal tokens, and tokens never reach the logs.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import { register, poll, pollOk, send, join, leave, members, endSession, assertError } from './helpers/http.js'
import { start } from './helpers/server.js'
import { waitHeld } from './helpers/wait.js'

/** Shannon entropy in bits of the characters found at each position, summed over positions. */
function positionalEntropy (tokens: string[]): number {
  const len = Math.min(...tokens.map((x) => x.length))
  let bits = 0
  for (let i = 0; i < len; i++) {
    const counts = new Map<string, number>()
    for (const tok of tokens) counts.set(tok[i], (counts.get(tok[i]) ?? 0) + 1)
    for (const c of counts.values()) {
      const p = c / tokens.length
      bits -= p * Math.log2(p)
    }
  }
  return bits
}

t.test('tokens: distinct over 1000 registrations, at least 128 bits, not derived from ids', async (t) => {
  // 1000 registrations from one address on purpose: no register limit.
  const s = await start(t, { registerRateLimit: false })
  const tokens: string[] = []
  const ids: string[] = []
  for (let i = 0; i < 1000; i++) {
    const r = await register(s)
    tokens.push(r.token)
    ids.push(r.id)
  }
  t.equal(new Set(tokens).size, 1000, 'all tokens distinct')
  t.equal(new Set(ids).size, 1000, 'all ids distinct')
  t.equal(new Set([...tokens, ...ids]).size, 2000, 'no token is an id')

  const alphabet = new Set(tokens.join(''))
  const minLen = Math.min(...tokens.map((x) => x.length))
  const capacity = minLen * Math.log2(alphabet.size)
  t.ok(capacity >= 128, `room for >= 128 bits: ${minLen} chars over an alphabet of ${alphabet.size} = ${capacity.toFixed(1)} bits`)
  if (/^[A-Za-z0-9_-]+$/.test(tokens.join(''))) t.ok(minLen >= 22, `base64url tokens have >= 22 characters (${minLen})`)
  // With 1000 samples a position of a random base64url token shows ~5.8 bits; a counter, a
  // timestamp or a fixed prefix shows far less. 100 bits measured needs ~17 random characters.
  const measured = positionalEntropy(tokens)
  t.ok(measured >= 100, `measured entropy across positions: ${measured.toFixed(1)} bits`)

  for (let i = 0; i < 1000; i++) {
    if (tokens[i].includes(ids[i]) || ids[i].includes(tokens[i])) {
      t.fail(`token ${i} and its id contain one another`)
      break
    }
  }
  // Consecutive tokens share no long common prefix (not sequential).
  let shared = 0
  for (let i = 1; i < 1000; i++) {
    let k = 0
    while (k < minLen && tokens[i][k] === tokens[i - 1][k]) k++
    shared = Math.max(shared, k)
  }
  t.ok(shared < 8, `longest prefix shared by consecutive tokens: ${shared} characters`)
})

t.test('ids are never accepted as tokens', async (t) => {
  const s = await start(t, {}, { listen: true })
  const a = await register(s, { rooms: ['r'] })
  const b = await register(s, { rooms: ['r'] })
  const asId = a.id
  assertError(t, await poll(s, asId, { wait: 0 }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'poll')
  assertError(t, await poll(s, asId, { cursor: a.cursor, wait: 0 }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'poll with cursor')
  assertError(t, await send(s, asId, { data: 1 }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'messages')
  assertError(t, await join(s, asId, 'x'), 401, 'LONGPOLL_UNKNOWN_SESSION', 'join')
  assertError(t, await leave(s, asId, 'r'), 401, 'LONGPOLL_UNKNOWN_SESSION', 'leave')
  assertError(t, await members(s, asId, 'r'), 401, 'LONGPOLL_UNKNOWN_SESSION', 'members')
  assertError(t, await endSession(s, asId), 401, 'LONGPOLL_UNKNOWN_SESSION', 'DELETE /session')
  t.equal((await s.app.longPoll.stats()).sessions, 2, 'the session was not ended')
  t.same((await s.app.longPoll.members('r')).map((m) => m.id).sort(), [a.id, b.id].sort(), 'nor left its room')

  // What other users see carries ids, never tokens.
  const list = await members(s, b.token, 'r')
  t.equal(list.status, 200)
  t.notOk(list.text.includes(a.token), 'member list has no token')
  const sent = await send(s, a.token, { data: 'x', room: 'r' })
  t.equal(sent.status, 202)
  t.notOk(sent.text.includes(a.token), 'the 202 body has no token')
  const p = await poll(s, b.token, { cursor: b.cursor, wait: 0 })
  t.notOk(p.text.includes(a.token), 'messages carry no token')
  t.ok(p.text.includes(a.id), 'but the id')
})

t.test('tokens never appear in the logs', async (t) => {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk, _enc, cb) {
      lines.push(String(chunk))
      cb()
    }
  })
  const s = await start(t, { pollTimeout: 5000, rateLimit: { max: 2, timeWindow: 60_000 } }, {
    listen: true,
    fastify: { logger: { level: 'trace', stream, redact: ['req.headers.authorization'] } }
  })
  const a = await register(s, { rooms: ['r'], profile: { name: 'Ann' } })
  const b = await register(s, { rooms: ['r'] })
  const tokens = [a.token, b.token]

  // A tour of every route, successes and errors, with a held, a superseded and an aborted poll.
  const ca = (await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })).cursor // the join messages
  const held = poll(s, a.token, { cursor: ca })
  await waitHeld(s, 1)
  const newer = poll(s, a.token, { cursor: ca })
  t.equal((await held).status, 409)
  t.equal((await send(s, b.token, { data: 'hi', room: 'r' })).status, 202)
  t.equal((await newer).status, 200)
  t.equal((await send(s, b.token, { data: 'again' })).status, 202)
  t.equal((await send(s, b.token, { data: 'limited' })).status, 429)
  t.equal((await send(s, a.token, { data: 1, to: 'nobody' })).status, 404)
  t.equal((await send(s, a.token, { data: 1, room: 'elsewhere' })).status, 403)
  t.equal((await send(s, a.token, { data: 1, room: 'r', to: b.id })).status, 400)
  t.equal((await poll(s, a.token, { cursor: 'bad cursor!', wait: 0 })).status, 400)
  t.equal((await s.request({ method: 'POST', path: '/messages', token: a.token, body: '{', headers: { 'content-type': 'application/json' } })).status, 400)
  const cb = (await pollOk(s, b.token, { cursor: b.cursor, wait: 0 })).cursor
  t.equal((await join(s, a.token, 'other')).status, 204)
  t.equal((await members(s, a.token, 'other')).status, 200)
  t.equal((await leave(s, a.token, 'other')).status, 204)
  const ac = new AbortController()
  const aborted = poll(s, b.token, { cursor: cb, signal: ac.signal })
  await waitHeld(s, 1)
  ac.abort()
  await t.rejects(aborted)
  await waitHeld(s, 0)
  t.equal((await endSession(s, a.token)).status, 204)
  t.equal((await poll(s, a.token, { wait: 0 })).status, 401)
  const cb2 = (await pollOk(s, b.token, { cursor: cb, wait: 0 })).cursor // a's leave
  const closing = poll(s, b.token, { cursor: cb2 })
  await waitHeld(s, 1)
  await s.close()
  t.equal((await closing).status, 503)

  const log = lines.join('')
  t.ok(log.includes('incoming request') && log.includes('request completed'), `the requests were logged (${lines.length} lines)`)
  t.ok(log.includes('/messages') && log.includes('/poll'), 'with their urls')
  for (const token of tokens) t.notOk(log.includes(token), 'no token in the log')
})

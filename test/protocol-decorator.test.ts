/**
 * PROTOCOL.md, "Plugin options the protocol names": the `app.longPoll` decorator, option checks
 * at register time, and the `authenticate`, `onMessage` and `onSessionEnd` options.
 */
import t from 'tap'
import Fastify from 'fastify'
import longPollChat from '../lib/index.js'
import type { IncomingMessage, LongPollChatOptions } from '../types/index.js'
import { register, send, reader, poll, pollOk, endSession, assertError } from './helpers/http.js'
import { recordingLogger, start } from './helpers/server.js'

t.test('broadcast: to every session or to a room\'s members; { id, ts, recipients }', async (t) => {
  const s = await start(t, {})
  const a = await register(s, { rooms: ['r'] })
  const b = await register(s, { rooms: ['r'] })
  const c = await register(s)
  const read = [reader(s, a), reader(s, b), reader(s, c)]
  for (const r of read) await r()

  const before = Date.now()
  const all = await s.app.longPoll.broadcast({ hello: 'all' })
  t.same(Object.keys(all).sort(), ['id', 'recipients', 'ts'])
  t.equal(all.recipients, 3)
  t.equal(typeof all.id, 'string')
  t.ok(all.ts >= before - 5 && all.ts <= Date.now() + 5, 'ts is epoch ms')
  for (const r of read) {
    t.same(await r(), [{ id: all.id, type: 'message', from: null, room: null, to: null, data: { hello: 'all' }, ts: all.ts }])
  }

  const room = await s.app.longPoll.broadcast('to r', { room: 'r' })
  t.equal(room.recipients, 2)
  const expected = [{ id: room.id, type: 'message', from: null, room: 'r', to: null, data: 'to r', ts: room.ts }]
  t.same(await read[0](), expected)
  t.same(await read[1](), expected)
  t.same(await read[2](), [], 'not a member: nothing')

  const empty = await s.app.longPoll.broadcast('nobody', { room: 'empty' })
  t.equal(empty.recipients, 0, 'an empty room: 0 recipients')
  t.equal(typeof empty.id, 'string')
  for (const r of read) t.same(await r(), [])
  t.not(all.id, room.id)
})

t.test('send: { id, ts } to one session, `to` set; unknown id rejects with LONGPOLL_NO_SUCH_SESSION', async (t) => {
  const s = await start(t, {})
  const a = await register(s)
  const b = await register(s)
  const readA = reader(s, a)
  const readB = reader(s, b)
  const r = await s.app.longPoll.send(a.id, { private: true })
  t.same(Object.keys(r).sort(), ['id', 'ts'])
  t.same(await readA(), [{ id: r.id, type: 'message', from: null, room: null, to: a.id, data: { private: true }, ts: r.ts }])
  t.same(await readB(), [], 'nobody else')
  await t.rejects(s.app.longPoll.send('no-such-id', 1), { code: 'LONGPOLL_NO_SUCH_SESSION' })
  await t.rejects(s.app.longPoll.send(a.token, 1), { code: 'LONGPOLL_NO_SUCH_SESSION' }, 'a token is not an id')
})

t.test('members() and members(room); endSession()', async (t) => {
  const s = await start(t, {})
  const before = Date.now()
  const a = await register(s, { rooms: ['r'], profile: { name: 'Ann' } })
  const b = await register(s)
  const everyone = await s.app.longPoll.members()
  t.same(everyone.map((m) => [m.id, m.profile]).sort(), [[a.id, { name: 'Ann' }], [b.id, null]].sort())
  for (const m of everyone) t.ok(m.lastSeen >= before - 5 && m.lastSeen <= Date.now() + 5, 'lastSeen is epoch ms')
  t.same((await s.app.longPoll.members('r')).map((m) => m.id), [a.id])
  t.same(await s.app.longPoll.members('nobody-here'), [])
  t.equal(await s.app.longPoll.endSession(b.id), true)
  t.equal(await s.app.longPoll.endSession(b.id), false)
  t.same((await s.app.longPoll.members()).map((m) => m.id), [a.id])
})

t.test('stats(): sessions, heldPolls, queued, delivered (first deliveries), dropped', async (t) => {
  const s = await start(t, { maxMailboxMessages: 2 })
  const zero = await s.app.longPoll.stats()
  t.same(zero, { ...zero, sessions: 0, heldPolls: 0, queued: 0, delivered: 0, dropped: 0 })
  const a = await register(s)
  await s.app.longPoll.send(a.id, 1)
  await s.app.longPoll.send(a.id, 2)
  t.match(await s.app.longPoll.stats(), { sessions: 1, heldPolls: 0, queued: 2, delivered: 0, dropped: 0 })
  const p = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.match(await s.app.longPoll.stats(), { queued: 2, delivered: 2 }, 'delivered, not acknowledged')
  await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.match(await s.app.longPoll.stats(), { queued: 2, delivered: 2 }, 'a repeat is not a new delivery')
  await pollOk(s, a.token, { cursor: p.cursor, wait: 0 })
  t.match(await s.app.longPoll.stats(), { queued: 0, delivered: 2, dropped: 0 }, 'acknowledged')
  for (let i = 0; i < 3; i++) await s.app.longPoll.send(a.id, i)
  // Store v2: the overflowed message is counted as dropped when the mailbox is read (its `missed`).
  t.match(await s.app.longPoll.stats(), { queued: 2 }, 'overflow: two kept')
  const q = await pollOk(s, a.token, { cursor: p.cursor, wait: 0 })
  t.same([q.messages.map((m) => m.data), q.missed], [[1, 2], 1], 'the oldest dropped, reported missed')
  t.match(await s.app.longPoll.stats(), { dropped: 1 }, 'and counted as dropped')
})

t.test('options are checked at register time: a wrong type throws a clear error', async (t) => {
  const wrong: Array<[keyof LongPollChatOptions, unknown]> = [
    ['pollTimeout', '1000'], ['pollTimeout', -1], ['pollTimeout', Number.NaN],
    ['messageTtl', 'x'], ['messageTtl', -5],
    ['sessionTtl', {}], ['sessionTtl', -1],
    ['maxMailboxMessages', '10'], ['maxMailboxMessages', 0.5],
    ['maxMessageBytes', '16k'], ['maxProfileBytes', []], ['maxSessions', true], ['maxRoomsPerSession', 'many'],
    ['sweepInterval', 'often'],
    ['rateLimit', 5], ['rateLimit', true], ['rateLimit', { max: 'x', timeWindow: 1000 }], ['rateLimit', { max: 5, timeWindow: '1s' }],
    ['authenticate', 'yes'], ['onMessage', 42], ['onSessionEnd', {}],
    ['store', 'memory'], ['prefix', 5],
    // Version 2's options.
    ['maxSessionsPerUser', 0], ['maxSessionsPerUser', '2'], ['maxPollBytes', 1.5], ['maxPollBytes', '256k'],
    ['presenceLimit', -1], ['presenceLimit', 'all'], ['membersPageSize', 0], ['historyPageSize', 'x'],
    ['responseTimeout', -1], ['responseTimeout', Number.POSITIVE_INFINITY],
    ['history', true], ['history', { maxMessages: 10 }], ['history', { maxMessages: 0, maxAge: 1000 }], ['history', { maxMessages: 10, maxAge: '1h' }],
    ['joinRateLimit', 5], ['joinRateLimit', { max: 0, timeWindow: 1000 }], ['pageRateLimit', true], ['pageRateLimit', { max: 5, timeWindow: -1 }],
    ['registerRateLimit', true], ['registerRateLimit', { max: 5, timeWindow: 1000, key: 'ip' }],
    ['authorize', 'yes'], ['authorize', {}],
    ['store', { init: () => {} }]
  ]
  for (const [name, value] of wrong) {
    const app = Fastify()
    t.teardown(() => app.close())
    const opts = { [name]: value } as unknown as LongPollChatOptions
    await t.rejects(async () => {
      await app.register(longPollChat, opts)
      await app.ready()
    }, { message: new RegExp(name) }, `${name}: ${JSON.stringify(value)} is refused, naming the option`)
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(longPollChat, {
    prefix: '/x',
    pollTimeout: 1000,
    rateLimit: false,
    maxMessagesPerPoll: 10,
    presenceLimit: 0,
    history: { maxMessages: 5, maxAge: 1000 },
    joinRateLimit: { max: 1, timeWindow: 1 },
    registerRateLimit: { max: 1, timeWindow: 1, key: () => null },
    authorize: () => true
  })
  await app.ready()
  t.pass('valid options register')
})

t.test('authenticate: sync or async; falsy or a throw is 401 LONGPOLL_UNAUTHORIZED; it runs first; its profile wins', async (t) => {
  const s = await start(t, {
    maxProfileBytes: 50,
    authenticate: async (request) => {
      const user = request.headers['x-user']
      if (user === 'throw') throw new Error('boom')
      if (user === 'async-false') return await Promise.resolve(false)
      if (user === 'null') return null
      if (user === 'undefined') return undefined
      if (user === 'yes') return true
      if (user === 'object') return {}
      if (user === 'alice') return { profile: { name: 'Alice (verified)' } }
      return false
    }
  })
  for (const user of ['none', 'throw', 'async-false', 'null', 'undefined']) {
    assertError(t, await s.request({ method: 'POST', path: '/register', headers: { 'x-user': user } }), 401, 'LONGPOLL_UNAUTHORIZED', user)
  }
  assertError(t, await s.request({ method: 'POST', path: '/register' }), 401, 'LONGPOLL_UNAUTHORIZED', 'no header')
  assertError(t, await s.request({ method: 'POST', path: '/register', json: { profile: { s: 'x'.repeat(100) } } }), 401, 'LONGPOLL_UNAUTHORIZED', 'refused, big profile')
  t.equal((await s.app.longPoll.stats()).sessions, 0, 'no session created')

  const yes = await register(s, { profile: { name: 'mine' } }, { 'x-user': 'yes' })
  const obj = await register(s, { profile: { name: 'kept' } }, { 'x-user': 'object' })
  const alice = await register(s, { profile: { name: 'Mallory' } }, { 'x-user': 'alice' })
  const list = new Map((await s.app.longPoll.members()).map((m) => [m.id, m.profile]))
  t.same(list.get(yes.id), { name: 'mine' }, 'true keeps the client\'s profile')
  t.same(list.get(obj.id), { name: 'kept' }, 'an object without profile keeps the client\'s profile')
  t.same(list.get(alice.id), { name: 'Alice (verified)' }, 'an object with profile replaces it')

  const sync = await start(t, { authenticate: (request) => request.headers['x-ok'] === '1' })
  t.equal((await sync.request({ method: 'POST', path: '/register', headers: { 'x-ok': '1' } })).status, 201, 'sync true')
  assertError(t, await sync.request({ method: 'POST', path: '/register' }), 401, 'LONGPOLL_UNAUTHORIZED', 'sync false')
  const thrower = await start(t, { authenticate: () => { throw new Error('no') } })
  assertError(t, await thrower.request({ method: 'POST', path: '/register' }), 401, 'LONGPOLL_UNAUTHORIZED', 'sync throw')
})

t.test('authenticate: any falsy result refuses (0, empty string)', async (t) => {
  const s = await start(t, { authenticate: (request) => (request.headers['x-user'] === 'zero' ? 0 : '') as unknown as boolean })
  for (const user of ['zero', 'empty']) {
    assertError(t, await s.request({ method: 'POST', path: '/register', headers: { 'x-user': user } }), 401, 'LONGPOLL_UNAUTHORIZED', user)
  }
  t.equal((await s.app.longPoll.stats()).sessions, 0, 'no session created')
})

t.test('authenticate runs first: a refused request is 401 whatever is wrong with its body', async (t) => {
  const s = await start(t, { maxProfileBytes: 10, maxRoomsPerSession: 1, authenticate: () => false })
  const bodies = [{ rooms: ['bad name'] }, { rooms: 'x' }, { profile: 'x' }, { rooms: ['a', 'b'] }, { profile: { s: 'x'.repeat(100) } }]
  for (const body of bodies) {
    assertError(t, await s.request({ method: 'POST', path: '/register', json: body }), 401, 'LONGPOLL_UNAUTHORIZED', JSON.stringify(body))
  }
})

t.test('onMessage: sees the message, can transform it or refuse it (false: 400)', async (t) => {
  const seen: IncomingMessage[] = []
  const s = await start(t, {
    rateLimit: { max: 2, timeWindow: 60_000 },
    onMessage: async (message, request) => {
      seen.push(message)
      t.equal(typeof request.headers.authorization, 'string', 'gets the request')
      if (message.data === 'refuse') return false
      if (typeof message.data === 'string') return { data: message.data.toUpperCase() }
      return undefined
    }
  })
  const a = await register(s, { rooms: ['r'], profile: { name: 'Ann' } })
  const b = await register(s)
  const readA = reader(s, a)
  const readB = reader(s, b)
  await readA()

  // Refused messages are not accepted sends: they do not count against the limit.
  for (let i = 0; i < 3; i++) assertError(t, await send(s, a.token, { data: 'refuse', room: 'r' }), 400, 'LONGPOLL_BAD_MESSAGE', 'false refuses')
  t.same(await readA(), [], 'nothing refused was delivered')

  t.equal((await send(s, a.token, { data: 'shout', room: 'r' })).status, 202)
  t.same((await readA()).map((m) => m.data), ['SHOUT'], 'transformed data is delivered')
  t.equal((await send(s, a.token, { data: { n: 1 }, to: b.id })).status, 202)
  t.same((await readB()).map((m) => m.data), [{ n: 1 }], 'undefined keeps it as it is')
  assertError(t, await send(s, a.token, { data: { n: 2 } }), 429, 'LONGPOLL_RATE_LIMITED', 'two accepted: limited')

  t.match(seen[0], { from: a.id, profile: { name: 'Ann' }, room: 'r', to: null, data: 'refuse' })
  t.match(seen.find((m) => m.to !== null), { from: a.id, room: null, to: b.id, data: { n: 1 } })
  t.equal(seen.length, 5, 'called for each message that passed the earlier checks')
})

t.test('onMessage: throwing an error with a 4xx statusCode and a string code answers with that error; without a code it is a 400', async (t) => {
  const s = await start(t, {
    onMessage: (message) => {
      if (message.data === 'teapot') throw Object.assign(new Error('I am a teapot'), { statusCode: 418, code: 'APP_TEAPOT' })
      if (message.data === 'no code') throw Object.assign(new Error('Refused by the app'), { statusCode: 422 })
      return true
    }
  })
  const a = await register(s)
  const readA = reader(s, a)
  const res = await send(s, a.token, { data: 'teapot' })
  assertError(t, res, 418, 'APP_TEAPOT')
  t.equal(res.body?.message, 'I am a teapot')
  // Protocol v2: an error code is a protocol code or the app's own string; without one, 400.
  const plain = await send(s, a.token, { data: 'no code' })
  assertError(t, plain, 400, 'LONGPOLL_BAD_MESSAGE', 'an error without code')
  t.same(await readA(), [], 'not delivered')
  t.equal((await send(s, a.token, { data: 'fine' })).status, 202, 'true accepts')
  t.same((await readA()).map((m) => m.data), ['fine'])
})

t.test('onMessage: any other error refuses the message with 400 and is logged, not shown to the client', async (t) => {
  const log = recordingLogger('warn')
  const s = await start(t, {
    onMessage: (message) => {
      if (message.data === 'crash') throw new Error('the database is down (a detail for the log only)')
      if (message.data === '5xx') throw Object.assign(new Error('upstream failed'), { statusCode: 502 })
      if (message.data === '3xx') throw Object.assign(new Error('moved'), { statusCode: 302 })
      return true
    }
  }, { fastify: { logger: log.logger } })
  const a = await register(s)
  const readA = reader(s, a)
  for (const data of ['crash', '5xx', '3xx']) {
    const res = await send(s, a.token, { data })
    assertError(t, res, 400, 'LONGPOLL_BAD_MESSAGE', data)
    t.equal(res.body?.message, 'message refused', `${data}: the app's error is not shown`)
  }
  t.same(await readA(), [], 'none was delivered')
  const warned = log.entries.filter((e) => e.msg === 'long-poll onMessage threw: message refused')
  t.equal(warned.length, 3, 'each one is logged')
  t.match(warned[0], { level: 40, err: { message: 'the database is down (a detail for the log only)' } }, 'at warn level, with the error')
})

t.test('onSessionEnd: a hook that throws or rejects is logged; the session still ends and its rooms hear leave', async (t) => {
  const log = recordingLogger('error')
  const calls: string[] = []
  const s = await start(t, {
    onSessionEnd: (info) => {
      calls.push(`${info.id}:${info.reason}`)
      if (calls.length === 1) throw new Error('hook bug (sync)')
      return Promise.reject(new Error('hook bug (async)'))
    }
  }, { fastify: { logger: log.logger } })
  const a = await register(s, { rooms: ['r'] })
  const b = await register(s, { rooms: ['r'] })
  const c = await register(s, { rooms: ['r'] })
  const readC = reader(s, c)
  await readC()

  t.equal((await endSession(s, a.token)).status, 204, 'DELETE /session answers 204 all the same')
  t.equal((await poll(s, a.token, { wait: 0 })).status, 401, 'its token stops working')
  t.equal(await s.app.longPoll.endSession(b.id), true, 'app.longPoll.endSession resolves true all the same')
  t.same((await readC()).map((m) => [m.type, m.from]), [['leave', a.id], ['leave', b.id]], 'the room heard both leave')
  t.same(calls, [`${a.id}:ended`, `${b.id}:ended`], 'the hook was called once for each')
  const logged = log.entries.filter((e) => e.msg === 'long-poll onSessionEnd hook failed')
  t.same(logged.map((e) => [e.level, e.err?.message]), [[50, 'hook bug (sync)'], [50, 'hook bug (async)']], 'both failures are logged at error level')
})

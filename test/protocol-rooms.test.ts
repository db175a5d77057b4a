/**
 * PROTOCOL.md, `POST /register`, rooms (`join`, `leave`, `members`), addressing of
 * `POST /messages` (room, to, everyone), room names, and the register-time limits
 * (maxRoomsPerSession, maxProfileBytes, maxSessions).
 */
import t from 'tap'
import type { Message } from '../types/index.js'
import { register, send, join, leave, members, endSession, reader, assertError, type Reply } from './helpers/http.js'
import { start } from './helpers/server.js'
import { sleep } from './helpers/wait.js'

const brief = (ms: Message[]): unknown[] => ms.map((m) => [m.type, m.from, m.room, m.to, m.data])

t.test('POST /register: 201 with id, token, cursor and the announced durations; with or without a body', async (t) => {
  const s = await start(t, { pollTimeout: 1234, messageTtl: 2345, sessionTtl: 3456 })
  const noBody = await s.request({ method: 'POST', path: '/register' })
  t.equal(noBody.status, 201, 'no body at all')
  t.match(noBody.headers['cache-control'], /no-store/)
  const b = noBody.body
  t.equal(typeof b.id, 'string')
  t.equal(typeof b.token, 'string')
  t.equal(typeof b.cursor, 'string')
  t.ok(b.id.length > 0 && b.token.length > 0 && b.cursor.length > 0)
  t.not(b.id, b.token)
  t.equal(b.pollTimeoutMs, 1234)
  t.equal(b.messageTtlMs, 2345)
  t.equal(b.sessionTtlMs, 3456)

  const empty = await s.request({ method: 'POST', path: '/register', json: {} })
  t.equal(empty.status, 201, 'an empty object')
  const full = await s.request({ method: 'POST', path: '/register', json: { rooms: ['r'], profile: { name: 'N', tags: ['x'] } } })
  t.equal(full.status, 201, 'rooms and profile')
  const charset = await s.request({ method: 'POST', path: '/register', body: '{}', headers: { 'content-type': 'application/json; charset=utf-8' } })
  t.equal(charset.status, 201, 'content-type with charset')
  const list = await s.app.longPoll.members('r')
  t.same(list.map((m) => [m.id, m.profile]), [[full.body.id, { name: 'N', tags: ['x'] }]])

  const defaults = await start(t, {})
  const d = await register(defaults)
  t.equal(d.pollTimeoutMs, 25_000, 'default pollTimeout')
  t.equal(d.messageTtlMs, 60_000, 'default messageTtl')
  t.equal(d.sessionTtlMs, 300_000, 'default sessionTtl')
})

t.test('POST /register: invalid bodies are 400', async (t) => {
  const s = await start(t, {})
  const bad: unknown[] = [
    { rooms: [null] }, { rooms: {} },
    { profile: 'Ann' }, { profile: 5 }, { profile: true }, { profile: ['Ann'] },
    [], 'x', 5
  ]
  for (const body of bad) {
    assertError(t, await s.request({ method: 'POST', path: '/register', json: body }), 400, undefined, JSON.stringify(body))
  }
  assertError(t, await s.request({ method: 'POST', path: '/register', body: '{"rooms":', headers: { 'content-type': 'application/json' } }), 400, undefined, 'broken JSON')
  t.equal((await s.app.longPoll.stats()).sessions, 0, 'no session was created')
})

t.test('POST /register: bodies of the wrong JSON type are refused, not coerced', async (t) => {
  // `rooms` is a string[]: a string, a number or boolean in the list, or a nested list
  // do not match (Fastify's default Ajv coerces such values unless the route says otherwise).
  const s = await start(t, {})
  for (const body of [{ rooms: 'lobby' }, { rooms: [1] }, { rooms: [true] }, { rooms: [['a']] }]) {
    assertError(t, await s.request({ method: 'POST', path: '/register', json: body }), 400, undefined, JSON.stringify(body))
  }
  t.equal((await s.app.longPoll.stats()).sessions, 0, 'no session was created')
})

t.test('rooms, direct messages and broadcasts reach exactly the right sessions', async (t) => {
  const s = await start(t, { rateLimit: false })
  const a = await register(s, { rooms: ['r1'] })
  const b = await register(s, { rooms: ['r1'] })
  const c = await register(s, { rooms: ['r2'] })
  const d = await register(s)
  const read = { a: reader(s, a), b: reader(s, b), c: reader(s, c), d: reader(s, d) }
  for (const r of Object.values(read)) await r() // the join messages

  const toRoom = await send(s, a.token, { data: 'room r1', room: 'r1' })
  t.equal(toRoom.status, 202)
  const direct = await send(s, a.token, { data: 'for d', to: d.id })
  t.equal(direct.status, 202)
  const everyone = await send(s, b.token, { data: 'for all' })
  t.equal(everyone.status, 202)
  const r2 = await send(s, c.token, { data: 'room r2', room: 'r2' })
  t.equal(r2.status, 202)

  const roomMsg = ['message', a.id, 'r1', null, 'room r1']
  const allMsg = ['message', b.id, null, null, 'for all']
  t.same(brief(await read.a()), [roomMsg, allMsg], 'a: its own room message and the broadcast (not its direct message)')
  t.same(brief(await read.b()), [roomMsg, allMsg], 'b: the room message and its own broadcast')
  t.same(brief(await read.c()), [allMsg, ['message', c.id, 'r2', null, 'room r2']], 'c: the broadcast and its own room message')
  t.same(brief(await read.d()), [['message', a.id, null, d.id, 'for d'], allMsg], 'd: the direct message and the broadcast')

  // A room message goes to the members at the time it is published.
  const late = await register(s)
  const readLate = reader(s, late)
  t.equal((await join(s, late.token, 'r1')).status, 204)
  t.same(brief(await readLate()), [['join', late.id, 'r1', null, null]], 'a late joiner gets its join, not older room messages')
  t.same(brief(await read.a()), [['join', late.id, 'r1', null, null]])
})

t.test('join and leave messages: profile or null, joiner included, no-ops send nothing', async (t) => {
  const s = await start(t, {})
  const a = await register(s, { rooms: ['r'], profile: { name: 'Ann' } })
  const readA = reader(s, a)
  t.same(brief(await readA()), [['join', a.id, 'r', null, { name: 'Ann' }]], 'joining through register: the joiner gets its own join')

  const b = await register(s)
  const readB = reader(s, b)
  const j = await join(s, b.token, 'r')
  t.equal(j.status, 204)
  t.equal(j.text, '', '204 has no body')
  t.match(j.headers['cache-control'], /no-store/)
  const joinB = ['join', b.id, 'r', null, null]
  t.same(brief(await readA()), [joinB], 'a member gets the join, data null without profile')
  t.same(brief(await readB()), [joinB], 'the joiner too')

  t.equal((await join(s, b.token, 'r')).status, 204, 'joining again: 204')
  t.equal((await leave(s, b.token, 'elsewhere')).status, 204, 'leaving a room one is not in: 204')
  t.same(await readA(), [], 'no-ops sent nothing (a)')
  t.same(await readB(), [], 'no-ops sent nothing (b)')

  t.equal((await leave(s, b.token, 'r')).status, 204)
  t.same(brief(await readA()), [['leave', b.id, 'r', null, null]], 'the remaining member gets the leave')
  t.same(await readB(), [], 'the leaver does not')
  t.equal((await leave(s, b.token, 'r')).status, 204, 'leaving again: 204')
  t.same(await readA(), [], 'and nothing sent')

  // Leave carries the profile too; the message has an id and a ts.
  const c = await register(s, { rooms: ['r'], profile: { name: 'Cy' } })
  await readA()
  t.equal((await leave(s, c.token, 'r')).status, 204)
  const [m] = await readA()
  t.same([m.type, m.from, m.room, m.data], ['leave', c.id, 'r', { name: 'Cy' }])
  t.equal(typeof m.id, 'string')
  t.equal(typeof m.ts, 'number')
})

t.test('GET /rooms/:room/members: members with profile and lastSeen; 403 for non-members', async (t) => {
  const s = await start(t, {})
  const before = Date.now()
  const a = await register(s, { rooms: ['r'], profile: { name: 'Ann' } })
  const b = await register(s, { rooms: ['r'] })
  const c = await register(s, { rooms: ['other'] })
  const res = await members(s, a.token, 'r')
  t.equal(res.status, 200)
  t.match(res.headers['cache-control'], /no-store/)
  t.same(Object.keys(res.body), ['members', 'next'])
  t.equal(res.body.next, null, 'one page: next is null')
  const list = [...res.body.members].sort((x: { id: string }, y: { id: string }) => (x.id === a.id ? -1 : y.id === a.id ? 1 : 0))
  t.same(list.map((m: { id: string, profile: unknown }) => [m.id, m.profile]), [[a.id, { name: 'Ann' }], [b.id, null]])
  for (const m of list) {
    t.same(Object.keys(m).sort(), ['id', 'lastSeen', 'profile'])
    t.ok(Number.isInteger(m.lastSeen) && m.lastSeen >= before - 5 && m.lastSeen <= Date.now() + 5, 'lastSeen is epoch ms')
  }

  // lastSeen moves with each authenticated request.
  const bSeen = list[1].lastSeen
  await sleep(30)
  await s.request({ path: '/poll?wait=0', token: b.token })
  const again = (await members(s, a.token, 'r')).body.members.find((m: { id: string }) => m.id === b.id)
  t.ok(again.lastSeen >= bSeen + 25, `lastSeen refreshed (${bSeen} -> ${again.lastSeen})`)

  assertError(t, await members(s, c.token, 'r'), 403, 'LONGPOLL_NOT_A_MEMBER', 'non-member')
  assertError(t, await members(s, c.token, 'nowhere'), 403, 'LONGPOLL_NOT_A_MEMBER', 'a room nobody is in')
  assertError(t, await members(s, 'nope', 'r'), 401, 'LONGPOLL_UNKNOWN_SESSION', 'bad token')
  t.equal((await leave(s, b.token, 'r')).status, 204)
  assertError(t, await members(s, b.token, 'r'), 403, 'LONGPOLL_NOT_A_MEMBER', 'after leaving')
  t.same((await members(s, a.token, 'r')).body.members.map((m: { id: string }) => m.id), [a.id])
  t.equal((await endSession(s, a.token)).status, 204)
  t.same(await s.app.longPoll.members('r'), [], 'an ended session is not listed')
})

const VALID_ROOMS = ['a', 'Z', '0', '_', '-', ':', '.a', 'a.', '...', 'a..b', 'A-z_0.9:Q', 'x'.repeat(64)]
const INVALID_ROOMS = ['.', '..', '', 'x'.repeat(65), 'a b', 'é', 'ü', '😀', 'a/b', 'a#b', 'a?b', 'a+b', 'a,b', '*', 'a\u0000', 'a\\b', '%41']

t.test('room names: the PROTOCOL.md regex through register, join, leave, members and messages', async (t) => {
  // One session joins, lists and leaves every valid name: the join and page rate limits are off.
  const s = await start(t, { rateLimit: false, joinRateLimit: false, pageRateLimit: false, maxRoomsPerSession: 100 })
  const a = await register(s)
  for (const room of VALID_ROOMS) {
    const what = `valid ${JSON.stringify(room.slice(0, 10))}`
    t.equal((await join(s, a.token, room)).status, 204, `${what}: join`)
    t.equal((await members(s, a.token, room)).status, 200, `${what}: members`)
    t.equal((await send(s, a.token, { data: 1, room })).status, 202, `${what}: message`)
    t.equal((await leave(s, a.token, room)).status, 204, `${what}: leave`)
    t.equal((await s.request({ method: 'POST', path: '/register', json: { rooms: [room] } })).status, 201, `${what}: register`)
  }
  for (const room of INVALID_ROOMS) {
    const what = `invalid ${JSON.stringify(room.slice(0, 10))}`
    assertError(t, await s.request({ method: 'POST', path: '/register', json: { rooms: [room] } }), 400, undefined, `${what}: register`)
    assertError(t, await send(s, a.token, { data: 1, room }), 400, undefined, `${what}: message`)
    // An empty segment is another route; '.' and '..' are dot-segments that URL parsers resolve
    // (inject does): they are tested raw over HTTP below.
    if (room === '' || room === '.' || room === '..') continue
    assertError(t, await join(s, a.token, room), 400, undefined, `${what}: join`)
    assertError(t, await leave(s, a.token, room), 400, undefined, `${what}: leave`)
    assertError(t, await members(s, a.token, room), 400, undefined, `${what}: members`)
  }
  t.same((await s.app.longPoll.members()).length, 1 + VALID_ROOMS.length, 'no session was registered with a bad room')
})

t.test('room names "." and ".." sent raw in the path are refused', async (t) => {
  const s = await start(t, {}, { listen: true })
  const a = await register(s)
  for (const seg of ['%2E', '%2E%2E', '%2e%2e', '.%2E']) {
    for (const action of ['join', 'leave']) {
      assertError(t, await s.request({ method: 'POST', path: `/rooms/${seg}/${action}`, token: a.token }), 400, undefined, `${seg} ${action}`)
    }
    assertError(t, await s.request({ path: `/rooms/${seg}/members`, token: a.token }), 400, undefined, `${seg} members`)
  }
  for (const seg of ['.', '..']) {
    const res = await s.request({ method: 'POST', path: `/rooms/${seg}/join`, token: a.token })
    t.ok(res.status >= 400 && res.status < 500, `literal ${seg} segment: ${res.status}`)
  }
  t.same((await s.app.longPoll.members()).map((m) => m.id), [a.id], 'one session, in no room')
  t.equal((await s.request({ method: 'POST', path: '/rooms/.a/join', token: a.token })).status, 204, 'while ".a" is fine')
})

t.test('maxRoomsPerSession: 403 LONGPOLL_TOO_MANY_ROOMS at register and join; duplicates count once', async (t) => {
  const s = await start(t, { maxRoomsPerSession: 2 })
  assertError(t, await s.request({ method: 'POST', path: '/register', json: { rooms: ['a', 'b', 'c'] } }), 403, 'LONGPOLL_TOO_MANY_ROOMS', 'three rooms at register')
  t.equal((await s.app.longPoll.stats()).sessions, 0, 'no session created')

  const x = await register(s, { rooms: ['a', 'a', 'b', 'b', 'a'] })
  const readX = reader(s, x)
  t.same(brief(await readX()).map((m) => (m as unknown[])[2]).sort(), ['a', 'b'], 'one join per distinct room')
  t.same((await s.app.longPoll.members('a')).map((m) => m.id), [x.id], 'listed once in a')
  assertError(t, await join(s, x.token, 'c'), 403, 'LONGPOLL_TOO_MANY_ROOMS', 'a third room')
  t.same(await readX(), [], 'the refused join sent nothing')
  t.same(await s.app.longPoll.members('c'), [])
  t.equal((await join(s, x.token, 'a')).status, 204, 'joining a room one is in, at the limit: no-op 204')
  t.equal((await leave(s, x.token, 'b')).status, 204)
  t.equal((await join(s, x.token, 'c')).status, 204, 'after leaving one, another can be joined')
})

t.test('maxRoomsPerSession defaults to 100', async (t) => {
  // Rooms asked for at registration are also bounded by the joins limit's max (20 by default,
  // test/limits-*.test.ts): off here, so that maxRoomsPerSession is the bound.
  const s = await start(t, { joinRateLimit: false })
  const names = Array.from({ length: 101 }, (_, i) => `room-${i}`)
  assertError(t, await s.request({ method: 'POST', path: '/register', json: { rooms: names } }), 403, 'LONGPOLL_TOO_MANY_ROOMS', '101 rooms')
  const a = await register(s, { rooms: names.slice(0, 100) })
  assertError(t, await join(s, a.token, 'room-100'), 403, 'LONGPOLL_TOO_MANY_ROOMS', 'the 101st room')
})

t.test('maxProfileBytes: UTF-8 bytes of JSON.stringify(profile); 413 LONGPOLL_PROFILE_TOO_LARGE', async (t) => {
  const s = await start(t, { maxProfileBytes: 20 })
  const atLimit = { n: 'éééééé' } // {"n":"éééééé"} = 8 + 12 = 20 bytes
  const over = { n: 'éééééé' + 'a' } // 21 bytes, 15 characters
  t.equal(Buffer.byteLength(JSON.stringify(atLimit)), 20)
  t.equal((await s.request({ method: 'POST', path: '/register', json: { profile: atLimit } })).status, 201, '20 bytes: accepted')
  assertError(t, await s.request({ method: 'POST', path: '/register', json: { profile: over } }), 413, 'LONGPOLL_PROFILE_TOO_LARGE', '21 bytes')
  assertError(t, await s.request({ method: 'POST', path: '/register', json: { profile: { e: '😀😀😀😀' } } }), 413, 'LONGPOLL_PROFILE_TOO_LARGE', 'emoji: 24 bytes, 15 UTF-16 units')

  const d = await start(t, {})
  const base = JSON.stringify({ s: '' }).length
  t.equal((await d.request({ method: 'POST', path: '/register', json: { profile: { s: 'x'.repeat(1024 - base) } } })).status, 201, 'default: 1024 bytes accepted')
  assertError(t, await d.request({ method: 'POST', path: '/register', json: { profile: { s: 'x'.repeat(1025 - base) } } }), 413, 'LONGPOLL_PROFILE_TOO_LARGE', 'default: 1025 bytes')
})

t.test('maxSessions: 503 LONGPOLL_SESSIONS_FULL, and room again once a session ends', async (t) => {
  const s = await start(t, { maxSessions: 2 })
  const a = await register(s)
  await register(s)
  const full: Reply = await s.request({ method: 'POST', path: '/register' })
  assertError(t, full, 503, 'LONGPOLL_SESSIONS_FULL', 'third session')
  t.equal((await s.app.longPoll.stats()).sessions, 2)
  t.equal((await endSession(s, a.token)).status, 204)
  t.equal((await s.request({ method: 'POST', path: '/register' })).status, 201, 'a slot is free again')
})

/**
 * PROTOCOL.md, users behind sessions: `authenticate` decides the user (private: never on the
 * wire), `POST /messages` with `toUser` reaches every live session of the person (all tabs) with
 * `toUser: true` and `to` the addressed session, and the sender learns nothing about the user;
 * `app.longPoll.sendToUser`, `userSessions`, `endUser` (logout everywhere: every tab's held poll
 * answered 401), `maxSessionsPerUser`, and the server's own join/leave with exactly one notice.
 */
import t from 'tap'
import type { Message } from '../types/index.js'
import { assertError, poll, register, reader, send, type Session } from './helpers/http.js'
import { start, type TestServer } from './helpers/server.js'
import { waitHeld } from './helpers/wait.js'

const asUser = (user: string): Record<string, string> => ({ 'x-user': user })

async function users (t: Parameters<typeof start>[0], options = {}): Promise<TestServer> {
  return await start(t, {
    rateLimit: false,
    authenticate: (request) => {
      const user = request.headers['x-user']
      // The profile the app shows is not the user (which stays private).
      return typeof user === 'string' ? { user, profile: { name: user.toUpperCase() } } : true
    },
    ...options
  }, { listen: true })
}

t.test('toUser: every tab of the person gets the message once, with toUser and the addressed session; the sender learns nothing', async (t) => {
  const s = await users(t)
  const tabs: Session[] = []
  for (let i = 0; i < 3; i++) tabs.push(await register(s, {}, asUser('alice')))
  const bob = await register(s, {}, asUser('bob'))
  const anon = await register(s)
  const other = await register(s, {}, asUser('carol'))
  const readers = tabs.map((x) => reader(s, x))
  const readOther = reader(s, other)

  const sent = await send(s, bob.token, { data: 'hi Alice', toUser: tabs[1].id })
  t.equal(sent.status, 202)
  t.same(Object.keys(sent.body).sort(), ['id', 'ts'], 'the reply is { id, ts } only')
  for (const [k, r] of readers.entries()) {
    const got = await r()
    t.same(got, [{ id: sent.body.id, type: 'message', from: bob.id, room: null, to: tabs[1].id, toUser: true, data: 'hi Alice', ts: sent.body.ts }], `tab ${k} got it once`)
  }
  t.same(await readOther(), [], 'another user did not')
  t.same(await reader(s, bob)(), [], 'nor the sender')

  // To a session without a user: that session alone; the reply has the same shape.
  const toAnon = await send(s, bob.token, { data: 'hi stranger', toUser: anon.id })
  t.equal(toAnon.status, 202)
  t.same(Object.keys(toAnon.body).sort(), Object.keys(sent.body).sort(), 'same reply whether or not the target has a user')
  const got = await reader(s, anon)()
  t.match(got, [{ to: anon.id, toUser: true, data: 'hi stranger' }])

  // Nothing private on the wire: the user is in no message, member or reply.
  const texts = [sent.text, toAnon.text, JSON.stringify(await s.app.longPoll.members())]
  t.notOk(texts.some((x) => x.includes('alice')), 'the user is never on the wire')

  assertError(t, await send(s, bob.token, { data: 1, toUser: 'nobody' }), 404, 'LONGPOLL_NO_SUCH_SESSION', 'an unknown session')
  assertError(t, await send(s, bob.token, { data: 1, toUser: tabs[0].id, to: tabs[0].id }), 400, 'LONGPOLL_BAD_MESSAGE', 'toUser and to')
  assertError(t, await send(s, bob.token, { data: 1, toUser: tabs[0].id, room: 'r' }), 400, 'LONGPOLL_BAD_MESSAGE', 'toUser and room')
  assertError(t, await send(s, bob.token, { data: 1, toUser: 'not valid!' }), 400, undefined, 'a malformed id')
})

t.test('a toUser message wakes the held polls of every tab', async (t) => {
  const s = await users(t, { pollTimeout: 10_000 })
  const tabs = await Promise.all([0, 1, 2].map(() => register(s, {}, asUser('alice'))))
  const bob = await register(s, {}, asUser('bob'))
  const held = tabs.map((x) => poll(s, x.token, { cursor: x.cursor }))
  await waitHeld(s, 3)
  t.equal((await send(s, bob.token, { data: 'wake', toUser: tabs[0].id })).status, 202)
  for (const res of await Promise.all(held)) {
    t.equal(res.status, 200)
    t.same(res.body.messages.map((m: Message) => m.data), ['wake'])
  }
})

t.test('app.longPoll: sendToUser, userSessions, endUser answers the held poll of every tab with 401', async (t) => {
  const ended: string[] = []
  const s = await users(t, { pollTimeout: 10_000, onSessionEnd: (info: { id: string }) => { ended.push(info.id) } })
  const tabs = await Promise.all([0, 1, 2].map(() => register(s, { rooms: ['r'] }, asUser('alice'))))
  const bob = await register(s, { rooms: ['r'] }, asUser('bob'))
  const readBob = reader(s, bob)
  await readBob()

  const list = await s.app.longPoll.userSessions('alice')
  t.same(list.map((m) => m.id).sort(), tabs.map((x) => x.id).sort(), 'userSessions: the user\'s live sessions')
  t.same(list.map((m) => m.profile), [{ name: 'ALICE' }, { name: 'ALICE' }, { name: 'ALICE' }])
  t.same(await s.app.longPoll.userSessions('nobody'), [])

  const readers = tabs.map((x) => reader(s, x))
  for (const r of readers) await r() // the join notices
  const fan = await s.app.longPoll.sendToUser('alice', { from: 'the server' })
  t.equal(fan.recipients, 3, 'sendToUser: recipients')
  for (const r of readers) t.same(await r(), [{ id: fan.id, type: 'message', from: null, room: null, to: null, toUser: true, data: { from: 'the server' }, ts: fan.ts }], 'each tab')
  t.same(await readBob(), [], 'nobody else')
  t.equal((await s.app.longPoll.sendToUser('nobody', 1)).recipients, 0, 'a user without sessions: 0')
  await t.rejects(s.app.longPoll.sendToUser('', 1), TypeError, 'an empty user is refused')

  // Logout everywhere.
  const cursors = await Promise.all(tabs.map(async (x) => (await poll(s, x.token, { cursor: x.cursor, wait: 0 })).body.cursor as string))
  const held = tabs.map((x, i) => poll(s, x.token, { cursor: cursors[i] }))
  await waitHeld(s, 3)
  t.equal(await s.app.longPoll.endUser('alice'), 3, 'endUser: the number of sessions ended')
  for (const res of await Promise.all(held)) assertError(t, res, 401, 'LONGPOLL_UNKNOWN_SESSION', 'a held poll of the user')
  for (const x of tabs) assertError(t, await poll(s, x.token, { wait: 0 }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'the token after')
  t.same(ended.sort(), tabs.map((x) => x.id).sort(), 'onSessionEnd for each')
  const leaves = (await readBob()).filter((m) => m.type === 'leave')
  t.same(leaves.map((m) => m.from).sort(), tabs.map((x) => x.id).sort(), 'one leave per tab in their room')
  t.same(await s.app.longPoll.userSessions('alice'), [])
  t.equal(await s.app.longPoll.endUser('alice'), 0, 'again: nothing to end')
})

t.test('maxSessionsPerUser: 403 LONGPOLL_TOO_MANY_SESSIONS; anonymous sessions are not counted; a freed slot is usable', async (t) => {
  const s = await users(t, { maxSessionsPerUser: 2 })
  const a1 = await register(s, {}, asUser('alice'))
  await register(s, {}, asUser('alice'))
  assertError(t, await s.request({ method: 'POST', path: '/register', headers: asUser('alice') }), 403, 'LONGPOLL_TOO_MANY_SESSIONS', 'a third tab')
  t.equal((await s.request({ method: 'POST', path: '/register', headers: asUser('bob') })).status, 201, 'another user')
  t.equal((await s.request({ method: 'POST', path: '/register' })).status, 201, 'anonymous')
  t.equal((await s.request({ method: 'POST', path: '/register' })).status, 201, 'anonymous again')
  t.equal((await s.app.longPoll.stats()).sessions, 5)
  await s.app.longPoll.endSession(a1.id)
  t.equal((await s.request({ method: 'POST', path: '/register', headers: asUser('alice') })).status, 201, 'after one ended')
})

t.test('app.longPoll.join/leave: the server puts a session in a room and takes it out, one notice each', async (t) => {
  const s = await users(t)
  const alice = await register(s, {}, asUser('alice'))
  const bob = await register(s, { rooms: ['r'] }, asUser('bob'))
  const anon = await register(s, { profile: { name: 'anon' } })
  const readBob = reader(s, bob)
  const readAlice = reader(s, alice)
  await readBob()

  t.equal(await s.app.longPoll.join(alice.id, 'r'), true, 'join: changed')
  t.equal(await s.app.longPoll.join(alice.id, 'r'), false, 'join again: no change')
  const joins = await readBob()
  t.same(joins.map((m) => [m.type, m.from, m.room, m.data]), [['join', alice.id, 'r', { name: 'ALICE' }]], 'one join notice, with the profile')
  t.same((await readAlice()).map((m) => m.type), ['join'], 'the joiner gets it too')
  t.equal((await send(s, alice.token, { data: 'I am in', room: 'r' })).status, 202, 'and may post to the room')

  t.equal(await s.app.longPoll.leave(alice.id, 'r'), true, 'leave: changed')
  t.equal(await s.app.longPoll.leave(alice.id, 'r'), false, 'leave again: no change')
  t.same((await readBob()).map((m) => [m.type, m.from]), [['message', alice.id], ['leave', alice.id]], 'one leave notice')
  assertError(t, await send(s, alice.token, { data: 'still?', room: 'r' }), 403, 'LONGPOLL_NOT_A_MEMBER', 'kicked out')

  t.equal(await s.app.longPoll.join('no-such-session', 'r'), false, 'an unknown session: false')
  t.equal(await s.app.longPoll.leave('no-such-session', 'r'), false)
  await t.rejects(s.app.longPoll.join(alice.id, 'not a room'), TypeError, 'a bad room name throws')
  t.equal(await s.app.longPoll.join(anon.id, 'r'), true, 'an anonymous session')
  t.same((await readBob()).map((m) => m.type), ['join'])
  t.same(await readBob(), [], 'nothing more')
})

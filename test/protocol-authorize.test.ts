/**
 * PROTOCOL.md, "Authorization": the `authorize` hook is asked before every action of its table,
 * on every path that leads to it (both join paths: rooms at register and the join route; join
 * with `history`), and the action happens only when it returns `true`. A refusal of any kind (a
 * value other than true, or anything thrown) is 403 LONGPOLL_FORBIDDEN with the error shape, and
 * nothing happens: no session, no membership, no message, no page. Rooms the server assigns and
 * the server's own API (`app.longPoll`) are not asked; leaving and ending one's session always
 * work.
 */
import t from 'tap'
import type { AuthorizeAction, HookSession } from '../types/index.js'
import { assertError, join, leave, members, endSession, register, send, reader, type Session } from './helpers/http.js'
import { start } from './helpers/server.js'

interface Call { session: HookSession, action: AuthorizeAction, header: unknown }

/** A server whose hook records every call and answers with `verdict(action)` (or throws what it returns in `thrown`). */
async function server (t: Parameters<typeof start>[0], verdict: (action: AuthorizeAction, session: HookSession) => unknown) {
  const calls: Call[] = []
  const s = await start(t, {
    rateLimit: false,
    history: { maxMessages: 20, maxAge: 60_000 },
    authenticate: (request) => {
      const user = request.headers['x-user']
      return typeof user === 'string' ? { user, context: { role: user === 'admin' ? 'admin' : 'member' }, rooms: user === 'staff' ? ['staff-room'] : [] } : true
    },
    authorize: (session, action, request) => {
      calls.push({ session, action, header: request.headers['x-user'] })
      return verdict(action, session) as boolean
    }
  })
  return { s, calls }
}

const kinds = (calls: Call[]): string[] => calls.map((c) => c.action.kind + ('room' in c.action ? ':' + c.action.room : '') + ('via' in c.action ? ':' + c.action.via : ''))

t.test('every action is asked about, with the session, the action and the request; refused, it does not happen', async (t) => {
  const refused = new Set<string>()
  const { s, calls } = await server(t, (action) => !refused.has(action.kind + ('room' in action ? ':' + action.room : '')))
  const alice = await register(s, { rooms: ['r'], profile: { name: 'Alice' } }, { 'x-user': 'alice' })
  const bob = await register(s, { rooms: ['r'] }, { 'x-user': 'bob' })
  const anon = await register(s)
  const readBob = reader(s, bob)
  await readBob()
  t.same(kinds(calls), ['join:r:register', 'join:r:register'], 'rooms asked for at register are asked about (anonymous: none asked)')
  t.match(calls[0].session, { user: 'alice', profile: { name: 'Alice' }, context: { role: 'member' } }, 'the session as the hook sees it')
  t.equal(calls[0].session.id, alice.id, 'with the id the session gets')
  t.equal(calls[0].header, 'alice', 'and the request')
  calls.length = 0

  // Join through register: refused, no session is created.
  refused.add('join:secret')
  const before = (await s.app.longPoll.stats()).sessions
  const res = await s.request({ method: 'POST', path: '/register', json: { rooms: ['r', 'secret'] }, headers: { 'x-user': 'carol' } })
  assertError(t, res, 403, 'LONGPOLL_FORBIDDEN', 'register asking for a refused room')
  t.equal((await s.app.longPoll.stats()).sessions, before, 'no session was created')
  t.same(kinds(calls), ['join:r:register', 'join:secret:register'])
  t.same(await readBob(), [], 'and no join was announced')

  // Join through the route.
  calls.length = 0
  assertError(t, await join(s, alice.token, 'secret'), 403, 'LONGPOLL_FORBIDDEN', 'the join route')
  t.same(kinds(calls), ['join:secret:route'])
  t.same(await s.app.longPoll.members('secret'), [], 'not a member')

  // Members, history, join with history.
  refused.add('members:r')
  assertError(t, await members(s, alice.token, 'r'), 403, 'LONGPOLL_FORBIDDEN', 'members')
  refused.add('history:r')
  assertError(t, await s.request({ path: '/rooms/r/history', token: alice.token }), 403, 'LONGPOLL_FORBIDDEN', 'history')
  const anonJoin = await s.request({ method: 'POST', path: '/rooms/r/join?history=5', token: anon.token })
  assertError(t, anonJoin, 403, 'LONGPOLL_FORBIDDEN', 'join with history')
  t.same((await s.app.longPoll.members('r')).map((m) => m.id).sort(), [alice.id, bob.id].sort(), 'the refused join with history did not join')
  t.same(await readBob(), [], 'nothing was announced')

  // The four kinds of send.
  refused.add('sendRoom:r').add('sendSession').add('sendUser').add('broadcast')
  calls.length = 0
  assertError(t, await send(s, alice.token, { data: 'to r', room: 'r' }), 403, 'LONGPOLL_FORBIDDEN', 'to a room')
  assertError(t, await send(s, alice.token, { data: 'to bob', to: bob.id }), 403, 'LONGPOLL_FORBIDDEN', 'to a session')
  assertError(t, await send(s, alice.token, { data: 'to bob', toUser: bob.id }), 403, 'LONGPOLL_FORBIDDEN', 'to a person')
  assertError(t, await send(s, alice.token, { data: 'to all' }), 403, 'LONGPOLL_FORBIDDEN', 'to everyone')
  t.same(calls.map((c) => c.action), [
    { kind: 'sendRoom', room: 'r', data: 'to r' },
    { kind: 'sendSession', to: bob.id, data: 'to bob' },
    { kind: 'sendUser', to: bob.id, user: 'bob', data: 'to bob' },
    { kind: 'broadcast', data: 'to all' }
  ], 'each with its target and data (sendUser: the recipient\'s private user)')
  t.same(await readBob(), [], 'nothing was delivered')

  // Allowed again: everything works.
  refused.clear()
  t.equal((await send(s, alice.token, { data: 'fine', room: 'r' })).status, 202)
  t.same((await readBob()).map((m) => m.data), ['fine'])
  t.equal((await members(s, alice.token, 'r')).status, 200)
})

t.test('a refusal is anything but true, and anything thrown: always 403 LONGPOLL_FORBIDDEN, never a 5xx', async (t) => {
  const verdicts: unknown[] = [false, undefined, null, 0, 1, 'yes', 'true', {}, [], Promise.resolve(false), Promise.resolve('true')]
  const thrown: unknown[] = [null, undefined, 'no', { reason: 'no' }, new Error('no'), Object.assign(new Error('teapot'), { statusCode: 418, code: 'APP_TEAPOT' }), 42]
  let current: () => unknown = () => true
  const { s } = await server(t, () => current())
  const a = await register(s, { rooms: ['r'] })
  for (const v of verdicts) {
    current = () => v
    assertError(t, await send(s, a.token, { data: 1 }), 403, 'LONGPOLL_FORBIDDEN', `returns ${String(v)}`)
  }
  for (const x of thrown) {
    current = () => { throw x }
    assertError(t, await send(s, a.token, { data: 1 }), 403, 'LONGPOLL_FORBIDDEN', `throws ${String(x)}`)
    assertError(t, await join(s, a.token, 'q'), 403, 'LONGPOLL_FORBIDDEN', `join, throws ${String(x)}`)
    assertError(t, await s.request({ method: 'POST', path: '/register', json: { rooms: ['q'] } }), 403, 'LONGPOLL_FORBIDDEN', `register, throws ${String(x)}`)
  }
  current = () => Promise.reject(new Error('async no'))
  assertError(t, await members(s, a.token, 'r'), 403, 'LONGPOLL_FORBIDDEN', 'a rejected promise')
  current = async () => true
  t.equal((await members(s, a.token, 'r')).status, 200, 'a promise of true allows')
  t.equal((await s.app.longPoll.stats()).sessions, 1, 'no refused registration created a session')
})

t.test('not asked: rooms the server assigns, the server API, leaving, ending one\'s session', async (t) => {
  const { s, calls } = await server(t, () => false)
  const staff: Session = await register(s, { rooms: ['staff-room'] }, { 'x-user': 'staff' })
  t.same(calls, [], 'server-assigned rooms (and the same room asked for too) are not asked about')
  t.same((await s.app.longPoll.members('staff-room')).map((m) => m.id), [staff.id], 'the session is in the room')

  const anon = await register(s)
  t.equal(await s.app.longPoll.join(anon.id, 'secret'), true, 'app.longPoll.join is not asked')
  t.equal((await s.app.longPoll.broadcast('from the server', { room: 'secret' })).recipients, 1)
  t.equal((await s.app.longPoll.broadcast('to everyone')).recipients, 2)
  await s.app.longPoll.send(anon.id, 'direct')
  await s.app.longPoll.sendToUser('staff', 'to the person')
  t.same(calls, [], 'nor are the server\'s own messages')
  const got = await reader(s, anon)()
  t.same(got.map((m) => [m.type, m.data]), [['join', null], ['message', 'from the server'], ['message', 'to everyone'], ['message', 'direct']])

  t.equal((await leave(s, anon.token, 'secret')).status, 204, 'leaving is always allowed')
  t.equal((await endSession(s, anon.token)).status, 204, 'ending one\'s session is always allowed')
  t.same(calls, [], 'and never asked about')
})

/**
 * The client's API for the additions of wire protocol 2, against a real server on 127.0.0.1,
 * port 0: room history (`history()`, `join(room, { history })`), messages to a person
 * (`send(data, { toUser })`), member pages (`membersPage()`, and `members()` following them up
 * to its bound), the `authorize` hook's refusals as errors; and the same calls from the tabs of a
 * `shared` group (fake Web Locks and BroadcastChannels), which use the group's session.
 */
import t, { type Test } from 'tap'
import type { FastifyRequest } from 'fastify'
import { createChatClient, MEMBER_PAGES, type ChatClient, type ChatClientOptions, type ChatMessage } from '../lib/client.js'
import type { LongPollChatOptions } from '../types/index.js'
import { startServer } from './helpers/client.js'
import { sleep, waitFor } from './helpers/wait.js'
import { ChannelHub, FakeLocks } from './helpers/tabs.js'

interface Text { text: string }
type Name = { name: string }

const HISTORY = { maxMessages: 20, maxAge: 60_000 }

/** The user of a registration: the `x-user` header (tests only; a real app checks a cookie or a token). */
function userOf (request: FastifyRequest): { user: string | null } {
  const user = request.headers['x-user']
  return { user: typeof user === 'string' ? user : null }
}

async function server (t: Test, options: LongPollChatOptions = {}): Promise<{ app: Awaited<ReturnType<typeof startServer>>['app'], url: string }> {
  return await startServer(t, { history: HISTORY, authenticate: userOf, ...options })
}

interface Client {
  chat: ChatClient<Text, Name>
  got: Array<ChatMessage<Text, Name>>
}

function client (t: Test, url: string, name: string, rooms: string[] = ['lobby'], extra: Partial<ChatClientOptions<Name>> = {}): Client {
  const chat = createChatClient<Text, Name>({ url, profile: { name }, rooms, ...extra })
  const got: Array<ChatMessage<Text, Name>> = []
  chat.on('message', m => { got.push(m) })
  t.teardown(() => chat.close())
  return { chat, got }
}

const texts = (messages: Array<ChatMessage<Text, Name>>): string[] => messages.flatMap(m => m.type === 'message' ? [m.data.text] : [])

t.test('history(): the room\'s recent messages, oldest first, paged back with next', { timeout: 20_000 }, async (t) => {
  const { app, url } = await server(t)
  const ada = client(t, url, 'Ada')
  await ada.chat.ready()
  for (let i = 1; i <= 7; i++) await ada.chat.send({ text: `m${i}` }, { room: 'lobby' })
  await app.longPoll.broadcast({ text: 'from the server' }, { room: 'lobby' })

  const recent = await ada.chat.history('lobby')
  t.same(texts(recent.messages), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'from the server'], 'every kept message, oldest first')
  t.match(recent.messages[0], { type: 'join', from: ada.chat.id, room: 'lobby', data: { name: 'Ada' } }, 'the join is history too')
  t.equal(recent.messages.at(-1)?.from, null, 'the server\'s message has from: null')
  t.equal(recent.next, null, 'nothing older')

  const last = await ada.chat.history('lobby', { limit: 3 })
  t.same(texts(last.messages), ['m6', 'm7', 'from the server'], 'limit: the most recent ones')
  t.type(last.next, 'string')
  const before = await ada.chat.history('lobby', { limit: 3, before: last.next as string })
  t.same(texts(before.messages), ['m3', 'm4', 'm5'], 'before: the page before')
  const oldest = await ada.chat.history('lobby', { limit: 3, before: before.next as string })
  t.same(oldest.messages.map(m => m.type === 'message' ? m.data.text : m.type), ['join', 'm1', 'm2'])
  t.equal(oldest.next, null, 'the oldest page says so')
  const ids = [...oldest.messages, ...before.messages, ...last.messages].map(m => m.id)
  t.same(ids, recent.messages.map(m => m.id), 'the pages put together are the whole history, once each')

  await t.rejects(ada.chat.history('den'), { statusCode: 403, code: 'LONGPOLL_NOT_A_MEMBER' })
  await t.rejects(ada.chat.history('lobby', { before: 'not a cursor' }), { statusCode: 400, code: 'LONGPOLL_BAD_CURSOR' })
  await t.rejects(ada.chat.history('lobby', { limit: 51 }), { statusCode: 400, code: 'FST_ERR_VALIDATION' })
})

t.test('join(room, { history }): what was said before the join; what follows comes as messages', { timeout: 20_000 }, async (t) => {
  const { app, url } = await server(t)
  const ada = client(t, url, 'Ada', ['den'])
  await ada.chat.ready()
  for (let i = 1; i <= 4; i++) await ada.chat.send({ text: `before ${i}` }, { room: 'den' })

  const bob = client(t, url, 'Bob', [])
  await bob.chat.ready()
  const recent = await bob.chat.join('den', { history: 3 })
  t.same(texts(recent), ['before 2', 'before 3', 'before 4'], 'the 3 most recent, oldest first')
  t.same(bob.chat.joinedRooms, ['den'])
  await ada.chat.send({ text: 'after' }, { room: 'den' })
  await waitFor(() => texts(bob.got).includes('after'), 'the message after the join')
  t.same(texts(bob.got), ['after'], 'only what came after the join arrives as messages')
  t.notOk(recent.some(m => m.type === 'join' && m.from === bob.chat.id), 'its own join is not in the history it got')
  t.ok(bob.got.some(m => m.type === 'join' && m.from === bob.chat.id), 'it arrives as a message')

  // Joining a room one is in: a no-op that still answers with the history.
  const again = await bob.chat.join('den', { history: 50 })
  t.same(texts(again), ['before 1', 'before 2', 'before 3', 'before 4', 'after'])
  t.equal(await bob.chat.join('den'), undefined, 'without options: nothing')
  await t.rejects(bob.chat.join('den', { history: 51 }), { statusCode: 400, code: 'FST_ERR_VALIDATION' })

  const off = await startServer(t)
  const carol = client(t, off.url, 'Carol', ['den'])
  await carol.chat.ready()
  await carol.chat.send({ text: 'unkept' }, { room: 'den' })
  const dan = client(t, off.url, 'Dan', [])
  await dan.chat.ready()
  t.same(await dan.chat.join('den', { history: 10 }), [], 'history off: an empty list')
  t.same(await dan.chat.history('den'), { messages: [], next: null })
  t.equal((await app.longPoll.history('den')).messages.length, 7, 'the first server kept its own')
})

t.test('send(data, { toUser }): every live session of the person gets it, with toUser: true', { timeout: 20_000 }, async (t) => {
  const { url } = await server(t)
  const ada = client(t, url, 'Ada', [], { registerHeaders: { 'x-user': 'ada' } })
  // Bob's two pages (two sessions of one user), and a stranger without a user.
  const bob1 = client(t, url, 'Bob', [], { registerHeaders: { 'x-user': 'bob' } })
  const bob2 = client(t, url, 'Bob', [], { registerHeaders: { 'x-user': 'bob' } })
  const eve = client(t, url, 'Eve', [])
  await Promise.all([ada, bob1, bob2, eve].map(c => c.chat.ready()))

  const sent = await ada.chat.send({ text: 'to Bob, wherever he is' }, { toUser: bob2.chat.id as string })
  t.match(sent, { id: String, ts: Number })
  for (const bob of [bob1, bob2]) {
    await waitFor(() => bob.got.some(m => m.id === sent.id), 'the message on each of Bob\'s sessions')
    t.match(bob.got.find(m => m.id === sent.id), { type: 'message', from: ada.chat.id, room: null, to: bob2.chat.id, toUser: true, data: { text: 'to Bob, wherever he is' } })
  }

  // To one session (`to`): that session alone, and no toUser field.
  const direct = await ada.chat.send({ text: 'only this page' }, { to: bob1.chat.id as string })
  await waitFor(() => bob1.got.some(m => m.id === direct.id), 'the direct message')
  t.notOk('toUser' in (bob1.got.find(m => m.id === direct.id) as object), 'a message to a session has no toUser field')

  // A session without a user: toUser reaches it alone; the reply is the same as for a user.
  const anon = await bob1.chat.send({ text: 'to Eve' }, { toUser: eve.chat.id as string })
  t.same(Object.keys(anon).sort(), Object.keys(sent).sort(), 'the sender learns nothing about users')
  await waitFor(() => eve.got.some(m => m.id === anon.id), 'the message to the anonymous session')
  await sleep(200)
  t.notOk(bob2.got.some(m => m.id === direct.id), 'the direct message reached one session')
  t.notOk([...ada.got, ...eve.got].some(m => m.id === sent.id), 'nobody else got the message to Bob')
  t.notOk(ada.got.some(m => m.id === anon.id))
  await t.rejects(ada.chat.send({ text: '?' }, { toUser: 'nobody' }), { statusCode: 404, code: 'LONGPOLL_NO_SUCH_SESSION' })
})

t.test('membersPage() pages through a room; members() follows the pages up to MEMBER_PAGES', { timeout: 30_000 }, async (t) => {
  const { url } = await server(t, { membersPageSize: 2, pageRateLimit: false })
  const people = ['Ada', 'Bob', 'Carol', 'Dan', 'Eve'].map(name => client(t, url, name))
  for (const p of people) await p.chat.ready()
  const ada = people[0] as Client

  const first = await ada.chat.membersPage('lobby')
  t.same(first.members.map(m => m.profile?.name), ['Ada', 'Bob'], 'a page: the server\'s page size, in the order they joined')
  t.type(first.next, 'string')
  const second = await ada.chat.membersPage('lobby', { after: first.next as string })
  t.same(second.members.map(m => m.profile?.name), ['Carol', 'Dan'])
  const third = await ada.chat.membersPage('lobby', { after: second.next as string })
  t.same(third.members.map(m => m.profile?.name), ['Eve'])
  t.equal(third.next, null, 'the last page')
  t.same((await ada.chat.membersPage('lobby', { limit: 1 })).members.map(m => m.profile?.name), ['Ada'], 'limit')
  t.match(first.members[0], { id: ada.chat.id, profile: { name: 'Ada' }, lastSeen: Number })

  const all = await ada.chat.members('lobby')
  t.same(all.map(m => m.profile?.name), ['Ada', 'Bob', 'Carol', 'Dan', 'Eve'], 'members(): every page')
  await t.rejects(ada.chat.membersPage('lobby', { limit: 3 }), { statusCode: 400, code: 'FST_ERR_VALIDATION' })
  await t.rejects(ada.chat.membersPage('lobby', { after: 'x' }), { statusCode: 400, code: 'LONGPOLL_BAD_CURSOR' })
  await t.rejects(ada.chat.membersPage('den'), { statusCode: 403, code: 'LONGPOLL_NOT_A_MEMBER' })
})

t.test('members() stops after MEMBER_PAGES pages', { timeout: 30_000 }, async (t) => {
  const { app, url } = await server(t, { membersPageSize: 1, pageRateLimit: false })
  const count = MEMBER_PAGES + 2
  const people = Array.from({ length: count }, (_, i) => client(t, url, `p${i}`, ['big']))
  for (const p of people) await p.chat.ready()
  const requests: string[] = []
  const watcher = client(t, url, 'Watcher', ['big'], {
    fetch: async (input, init) => {
      if (String(input).includes('/members')) requests.push(String(input))
      return await fetch(input, init)
    }
  })
  await watcher.chat.ready()
  const list = await watcher.chat.members('big')
  t.equal(list.length, MEMBER_PAGES, `${MEMBER_PAGES} pages of one member`)
  t.equal(requests.length, MEMBER_PAGES, 'one request per page, no more')
  t.same(list.map(m => m.profile?.name), people.slice(0, MEMBER_PAGES).map((_, i) => `p${i}`), 'the first ones, in order')
  t.equal((await app.longPoll.members('big')).length, count + 1, 'the room has more')
})

t.test('refusals of the authorize hook reject with 403 LONGPOLL_FORBIDDEN', { timeout: 20_000 }, async (t) => {
  const { app, url } = await server(t, {
    authorize: (session, action) => {
      switch (action.kind) {
        case 'sendRoom': return action.room !== 'news'
        case 'history': return action.room !== 'secret'
        case 'join': return action.room !== 'vault'
        case 'members': return action.room !== 'news'
        case 'sendUser': return session.user !== null
        default: return true
      }
    }
  })
  const ada = client(t, url, 'Ada', ['news', 'secret'], { registerHeaders: { 'x-user': 'ada' } })
  const eve = client(t, url, 'Eve', ['news'])
  await Promise.all([ada.chat.ready(), eve.chat.ready()])
  await app.longPoll.broadcast({ text: 'server news' }, { room: 'news' })
  t.same(texts((await ada.chat.history('news')).messages), ['server news'], 'reading is allowed')
  await t.rejects(ada.chat.send({ text: 'me too' }, { room: 'news' }), { statusCode: 403, code: 'LONGPOLL_FORBIDDEN' })
  await t.rejects(ada.chat.history('secret'), { statusCode: 403, code: 'LONGPOLL_FORBIDDEN' })
  await t.rejects(ada.chat.join('secret', { history: 5 }), { statusCode: 403, code: 'LONGPOLL_FORBIDDEN' }, 'a join with history asks about history too')
  await t.rejects(ada.chat.join('vault'), { statusCode: 403, code: 'LONGPOLL_FORBIDDEN' })
  t.same(ada.chat.joinedRooms.sort(), ['news', 'secret'], 'a refused join is not remembered')
  await t.rejects(ada.chat.members('news'), { statusCode: 403, code: 'LONGPOLL_FORBIDDEN' })
  await t.rejects(eve.chat.send({ text: 'psst' }, { toUser: ada.chat.id as string }), { statusCode: 403, code: 'LONGPOLL_FORBIDDEN' })
  await ada.chat.send({ text: 'hi Eve' }, { toUser: eve.chat.id as string })
  await waitFor(() => texts(eve.got).includes('hi Eve'), 'an allowed message to a person')
  t.equal(ada.chat.state, 'live', 'a refusal does not disturb the client')
})

t.test('shared tabs: history, join with history, member pages and toUser work in every tab', { timeout: 30_000 }, async (t) => {
  const { app, url } = await server(t)
  const hub = new ChannelHub()
  const locks = new FakeLocks()
  const tabs = ['one', 'two'].map(name => client(t, url, 'Bob', ['lobby'], {
    name: 'shared-v2',
    registerHeaders: { 'x-user': 'bob' },
    shared: { locks: locks.forTab(name, hub), BroadcastChannel: hub.channelFor(name), heartbeat: 100, settle: 30 }
  }))
  await Promise.all(tabs.map(x => x.chat.ready()))
  await waitFor(() => tabs.some(x => x.chat.role === 'leader') && tabs.some(x => x.chat.role === 'follower'), 'a leader and a follower')
  const follower = tabs.find(x => x.chat.role === 'follower') as Client
  t.equal(tabs[0]?.chat.id, tabs[1]?.chat.id, 'one session')

  const ada = client(t, url, 'Ada', ['den'], { registerHeaders: { 'x-user': 'ada' } })
  await ada.chat.ready()
  await ada.chat.send({ text: 'said in the den' }, { room: 'den' })
  await app.longPoll.broadcast({ text: 'lobby news' }, { room: 'lobby' })
  const recent = await follower.chat.join('den', { history: 10 })
  t.same(texts(recent), ['said in the den'], 'a follower joins with history')
  await waitFor(() => tabs.every(x => x.chat.joinedRooms.includes('den')), 'the group knows the room')
  t.same(texts((await follower.chat.history('lobby')).messages), ['lobby news'], 'a follower reads history')
  const page = await follower.chat.membersPage('den', { limit: 1 })
  t.same(page.members.map(m => m.profile?.name), ['Ada'], 'a follower reads member pages')
  t.same((await follower.chat.members('den')).map(m => m.profile?.name), ['Ada', 'Bob'])

  const sent = await follower.chat.send({ text: 'from a follower to Ada' }, { toUser: ada.chat.id as string })
  await waitFor(() => ada.got.some(m => m.id === sent.id), 'Ada got it')
  const toBob = await ada.chat.send({ text: 'to Bob' }, { toUser: follower.chat.id as string })
  for (const x of tabs) await waitFor(() => x.got.some(m => m.id === toBob.id && m.toUser === true), 'every tab of Bob got it')
  t.equal((await app.longPoll.stats()).sessions, 2, 'still one session for Bob\'s tabs')
})

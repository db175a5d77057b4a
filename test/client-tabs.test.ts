/**
 * The client's `shared` option (lib/client/tabs.ts, batches.ts) with fake Web Locks and
 * BroadcastChannels (test/helpers/tabs.ts) against a real server on 127.0.0.1: several "tabs"
 * share one session and one held poll, see the same messages in the same order, and hand over
 * when the leader leaves or freezes, without losing or repeating a message.
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { createChatClient, type ChatClient, type ChatClientOptions, type ChatMessage } from '../lib/client.js'
import { startServer, type Num } from './helpers/client.js'
import { sleep as delay } from './helpers/wait.js'
import { ChannelHub, FakeLocks, freezableFetch, MemoryStorage } from './helpers/tabs.js'

interface Browser { hub: ChannelHub, locks: FakeLocks }

interface Tab {
  name: string
  chat: ChatClient<Num>
  got: Array<ChatMessage<Num>>
}

const HEARTBEAT = 100

function browser (): Browser {
  return { hub: new ChannelHub(), locks: new FakeLocks() }
}

let tabCount = 0

function tab (t: Test, b: Browser, url: string, options: Partial<ChatClientOptions> = {}, name = `tab${++tabCount}`): Tab {
  const chat = createChatClient<Num>({
    url,
    rooms: ['lobby'],
    fetch: freezableFetch(b.hub, name),
    shared: { locks: b.locks.forTab(name, b.hub), BroadcastChannel: b.hub.channelFor(name), heartbeat: HEARTBEAT, settle: 30 },
    name: 'chat-test',
    ...options
  })
  const got: Array<ChatMessage<Num>> = []
  chat.on('message', m => { got.push(m) })
  t.teardown(() => chat.close({ keepSession: true }))
  return { name, chat, got }
}

async function until (what: string, cond: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await delay(10)
  }
}

const numbers = (tab: Tab): number[] => tab.got.filter(m => m.type === 'message').map(m => (m.data as Num).n)
const ids = (tab: Tab): string[] => tab.got.map(m => m.id)

async function leaderOf (tabs: Tab[]): Promise<Tab> {
  await until('a leader', () => tabs.some(x => x.chat.role === 'leader'))
  const leaders = tabs.filter(x => x.chat.role === 'leader')
  if (leaders.length !== 1) throw new Error(`${leaders.length} leaders: ${leaders.map(x => x.name).join(', ')}`)
  return leaders[0] as Tab
}

/** Broadcasts n1..n2 from the server, `gapMs` apart. */
async function sendRange (app: FastifyInstance, from: number, to: number, gapMs: number, during?: (n: number) => Promise<void> | void): Promise<void> {
  for (let n = from; n <= to; n++) {
    await app.longPoll.broadcast({ n })
    await during?.(n)
    if (gapMs > 0) await delay(gapMs)
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

t.test('three tabs share one session and one poll; all see the same messages in the same order', async (t) => {
  const server = await startServer(t)
  const b = browser()
  const tabs = [tab(t, b, server.url), tab(t, b, server.url), tab(t, b, server.url)]
  await Promise.all(tabs.map(x => x.chat.ready()))
  const leader = await leaderOf(tabs)
  const followers = tabs.filter(x => x !== leader)
  t.equal(new Set(tabs.map(x => x.chat.id)).size, 1, 'one session id in every tab')
  t.equal(b.hub.requests.get('POST /chat/register'), 1, 'one registration')
  t.same(followers.map(x => x.chat.role), ['follower', 'follower'])

  await sendRange(server.app, 1, 20, 0)
  await until('every tab has 20', () => tabs.every(x => numbers(x).length >= 20))
  for (const x of tabs) t.same(numbers(x), range(1, 20), `${x.name}: 1..20 once, in order`)
  t.same(ids(followers[0] as Tab), ids(leader), 'same messages (join included) in the same order')
  t.same(ids(followers[1] as Tab), ids(leader))
  for (let i = 0; i < 100 && (await server.app.longPoll.stats()).heldPolls === 0; i++) await delay(10)
  t.equal((await server.app.longPoll.stats()).heldPolls, 1, 'one held poll for the three tabs')
  t.same(followers.map(x => b.hub.requests.get(`${x.name} GET /chat/poll`) ?? 0), [0, 0], 'followers never poll')

  // A follower sends, joins and reads members with the shared session.
  const f = followers[0] as Tab
  const sent = await f.chat.send({ n: 100 }, { room: 'lobby' })
  await until('the follower\'s message everywhere', () => tabs.every(x => x.got.some(m => m.id === sent.id)))
  t.equal(tabs[0]?.got.find(m => m.id === sent.id)?.from, f.chat.id, 'from the shared session')
  await f.chat.join('den')
  await until('the room everywhere', () => tabs.every(x => x.chat.joinedRooms.includes('den')))
  t.same((await followers[1]?.chat.members('den'))?.map(m => m.id), [f.chat.id])
  t.equal((await server.app.longPoll.stats()).sessions, 1, 'still one session')
})

t.test('the leader leaves mid-conversation: another tab takes over, nothing lost or doubled', async (t) => {
  const server = await startServer(t)
  const b = browser()
  const tabs = [tab(t, b, server.url), tab(t, b, server.url), tab(t, b, server.url)]
  await Promise.all(tabs.map(x => x.chat.ready()))
  const first = await leaderOf(tabs)
  const rest = tabs.filter(x => x !== first)
  await sendRange(server.app, 1, 40, 15, async (n) => {
    if (n === 15) await first.chat.close({ keepSession: true })
  })
  await until('both remaining tabs have 40', () => rest.every(x => numbers(x).length >= 40))
  const second = await leaderOf(rest)
  t.not(second, first, 'another tab leads')
  for (const x of rest) t.same(numbers(x), range(1, 40), `${x.name}: 1..40 once, in order`)
  t.same(ids(rest[0] as Tab), ids(rest[1] as Tab), 'the same order in both')
  t.equal((await server.app.longPoll.stats()).sessions, 1, 'the session went on')

  // And again: the second leader leaves; the last tab polls alone for the group.
  const last = rest.find(x => x !== second) as Tab
  await second.chat.close({ keepSession: true })
  await sendRange(server.app, 41, 50, 10)
  await until('the last tab has 50', () => numbers(last).length >= 50)
  t.same(numbers(last), range(1, 50))
  t.equal(last.chat.role, 'leader')
})

t.test('a frozen leader is replaced; after it thaws it follows and has every message once', async (t) => {
  const server = await startServer(t)
  const b = browser()
  const tabs = [tab(t, b, server.url), tab(t, b, server.url), tab(t, b, server.url)]
  await Promise.all(tabs.map(x => x.chat.ready()))
  const first = await leaderOf(tabs)
  const rest = tabs.filter(x => x !== first)
  await sendRange(server.app, 1, 10, 5)
  await until('10 everywhere', () => tabs.every(x => numbers(x).length >= 10))

  b.hub.freeze(first.name)
  await sendRange(server.app, 11, 30, 30)
  await until('the others have 30', () => rest.every(x => numbers(x).length >= 30))
  t.ok(b.locks.steals >= 1, 'the silent leader\'s lock was taken')
  const second = await leaderOf(tabs)
  t.not(second, first)
  for (const x of rest) t.same(numbers(x), range(1, 30), `${x.name}: 1..30 once, in order`)

  b.hub.thaw(first.name)
  await sendRange(server.app, 31, 35, 5)
  await until('the thawed tab has 35', () => numbers(first).length >= 35)
  await until('everyone has 35', () => tabs.every(x => numbers(x).length >= 35))
  t.same(numbers(first), range(1, 35), 'the thawed tab: every message once, in order')
  t.equal(first.chat.role, 'follower')
  for (const x of rest) t.same(numbers(x), range(1, 35))
  t.equal((await server.app.longPoll.stats()).sessions, 1)
})

t.test('a tab that reloads catches up on what the group got meanwhile', async (t) => {
  const server = await startServer(t)
  const b = browser()
  const storage = new MemoryStorage()
  const a = tab(t, b, server.url)
  await a.chat.ready()
  await leaderOf([a])
  const r1 = tab(t, b, server.url, { persist: storage }, 'reloading')
  await r1.chat.ready()
  await sendRange(server.app, 1, 5, 5)
  await until('r1 has 5', () => numbers(r1).length >= 5)
  await r1.chat.close({ keepSession: true })
  await sendRange(server.app, 6, 12, 5)
  await until('a has 12', () => numbers(a).length >= 12)
  const r2 = tab(t, b, server.url, { persist: storage }, 'reloading')
  await sendRange(server.app, 13, 15, 5)
  await until('r2 has 6..15', () => numbers(r2).length >= 10)
  t.same(numbers(r2), range(6, 15), 'what came during the reload, then the rest, once, in order')
  t.equal(r2.chat.id, a.chat.id)
})

t.test('close() in one tab ends the session for all; a refused registration closes every tab', async (t) => {
  const server = await startServer(t)
  const b = browser()
  const tabs = [tab(t, b, server.url), tab(t, b, server.url)]
  await Promise.all(tabs.map(x => x.chat.ready()))
  await leaderOf(tabs)
  await (tabs[1] as Tab).chat.close()
  await until('both closed', () => tabs.every(x => x.chat.state === 'closed'))
  t.same(tabs.map(x => x.chat.closeReason), ['closed', 'closed'])
  for (let i = 0; i < 100 && (await server.app.longPoll.stats()).sessions > 0; i++) await delay(20)
  t.equal((await server.app.longPoll.stats()).sessions, 0, 'the session ended')

  const b2 = browser()
  const refused = [tab(t, b2, server.url, { rooms: ['bad room'] }), tab(t, b2, server.url, { rooms: ['bad room'] })]
  await until('both refused', () => refused.every(x => x.chat.state === 'closed'))
  t.same(refused.map(x => x.chat.closeReason), ['refused', 'refused'])
})

t.test('the leader registers again when the session ends; followers follow and can send', async (t) => {
  const server = await startServer(t)
  const b = browser()
  const tabs = [tab(t, b, server.url), tab(t, b, server.url)]
  await Promise.all(tabs.map(x => x.chat.ready()))
  const leader = await leaderOf(tabs)
  const follower = tabs.find(x => x !== leader) as Tab
  const old = leader.chat.id as string
  const seen: string[] = []
  follower.chat.on('session', e => { seen.push(`${e.previousId}->${e.id}`) })
  await server.app.longPoll.endSession(old)
  const sent = await follower.chat.send({ n: 7 })
  t.not(follower.chat.id, old, 'the follower has the new session')
  t.equal(leader.chat.id, follower.chat.id)
  await until('the message everywhere', () => tabs.every(x => numbers(x).includes(7)))
  t.equal(tabs[0]?.got.find(m => m.id === sent.id)?.from, follower.chat.id)
  t.same(seen, [`${old}->${follower.chat.id}`], 'one session event')
  t.equal((await server.app.longPoll.stats()).sessions, 1)
})

t.test('without Web Locks or BroadcastChannel each tab polls alone', async (t) => {
  const server = await startServer(t)
  const tabs = [0, 1].map(() => {
    const chat = createChatClient<Num>({ url: server.url, shared: true })
    t.teardown(() => chat.close())
    return chat
  })
  await Promise.all(tabs.map(c => c.ready()))
  t.same(tabs.map(c => c.role), ['single', 'single'])
  t.not(tabs[0]?.id, tabs[1]?.id, 'a session each')
})

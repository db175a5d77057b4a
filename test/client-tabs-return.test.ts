/**
 * A tab of a group (`shared`, with `persist`) that comes back after the group's recent batches
 * moved on past it, against a real server on 127.0.0.1: it gets what the recent batches still
 * hold, once and in order, and is told how many messages it missed meanwhile.
 */
import t, { type Test } from 'tap'
import { createChatClient, type ChatClient, type ChatClientOptions, type ChatMessage } from '../lib/client.js'
import { startServer, type Num } from './helpers/client.js'
import { ChannelHub, FakeLocks, freezableFetch, MemoryStorage } from './helpers/tabs.js'
import { waitFor } from './helpers/wait.js'

interface Tab { chat: ChatClient<Num>, got: Array<ChatMessage<Num>>, missed: number[] }

/** More batches than the group keeps (64), so that a tab away for all of them cannot get the first. */
const AWAY = 80

function tab (t: Test, hub: ChannelHub, locks: FakeLocks, name: string, url: string, options: Partial<ChatClientOptions> = {}): Tab {
  const chat = createChatClient<Num>({
    url,
    rooms: ['lobby'],
    name: 'chat-return',
    fetch: freezableFetch(hub, name),
    shared: { locks: locks.forTab(name, hub), BroadcastChannel: hub.channelFor(name), heartbeat: 100, settle: 30 },
    ...options
  })
  const x: Tab = { chat, got: [], missed: [] }
  chat.on('message', m => { x.got.push(m) })
  chat.on('missed', e => { x.missed.push(e.count) })
  t.teardown(() => chat.close({ keepSession: true }))
  return x
}

const numbers = (x: Tab): number[] => x.got.filter(m => m.type === 'message').map(m => (m.data as Num).n)

t.test('a tab back after more batches than the group keeps: the rest once, in order, and the count of what it missed', { timeout: 30_000 }, async (t) => {
  const { app, url } = await startServer(t)
  const hub = new ChannelHub()
  const locks = new FakeLocks()
  const storage = new MemoryStorage()
  const a = tab(t, hub, locks, 'stays', url)
  await a.chat.ready()
  await waitFor(() => a.chat.role === 'leader', 'the first tab to lead')
  const r1 = tab(t, hub, locks, 'returns', url, { persist: storage })
  await r1.chat.ready()
  for (let n = 1; n <= 5; n++) {
    await app.longPoll.broadcast({ n })
    await waitFor(() => numbers(r1).includes(n), `message ${n} at the tab that will leave`)
  }
  await r1.chat.close({ keepSession: true })
  const before = a.got.length

  // One message per batch: the next is sent once the leader has shared the one before.
  for (let n = 6; n < 6 + AWAY; n++) {
    await app.longPoll.broadcast({ n })
    await waitFor(() => numbers(a).includes(n), `message ${n} at the leader`)
  }
  const away = a.got.slice(before).map(m => m.id)

  const r2 = tab(t, hub, locks, 'returns', url, { persist: storage })
  await waitFor(() => numbers(r2).includes(5 + AWAY), 'the returning tab to catch up', 10_000)
  const got = numbers(r2)
  t.same(got, [...got].sort((x, y) => x - y), 'in order')
  t.equal(new Set(got).size, got.length, 'once each')
  t.notOk(got.some(n => n <= 5), 'nothing it had before it left')
  t.ok(got.length < AWAY && got.length >= 64 - 1, `what the recent batches hold (${got.length} of the ${AWAY} sent while it was away)`)
  const gotIds = new Set(r2.got.map(m => m.id))
  const gone = away.filter(id => !gotIds.has(id)).length
  t.ok(r2.missed.length > 0 && r2.missed.every(c => c > 0), 'told that it missed some')
  t.equal(r2.missed.reduce((s, c) => s + c, 0), gone, `the missed count: the ${gone} messages it cannot get`)
  t.equal(r2.chat.id, a.chat.id, 'the group\'s session')
})

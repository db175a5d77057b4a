/**
 * The client's `persist` option (lib/client/storage.ts): what it keeps and reads back, and a
 * "reload" against a real server on 127.0.0.1 — a client stops without ending its session
 * (`close({ keepSession: true })`, as a page that goes away), messages arrive meanwhile, and a
 * new client on the same storage resumes the session: nothing lost, nothing handed over twice.
 */
import t from 'tap'
import { createChatClient, type ChatMessage } from '../lib/client.js'
import { MAX_IDS, Progress, SessionStore, type Saved } from '../lib/client/storage.js'
import { client, collect, startServer, type Num } from './helpers/client.js'
import { sleep as delay } from './helpers/wait.js'
import { MemoryStorage } from './helpers/tabs.js'

/** The storage key the client uses by default. */
const keyOf = (url: string): string => 'longpoll-chat:' + new URL(url).href

const saved = (over: Partial<Saved> = {}): Saved => ({
  id: 'sid', token: 'tok', cursor: '4', rooms: ['lobby'], seq: 0, total: 0, ids: ['a', 'b'], open: true, ...over
})

t.test('SessionStore keeps the session and reads back only what reads as one', async (t) => {
  const storage = new MemoryStorage()
  const store = new SessionStore(storage, storage, 'k')
  t.equal(store.load(), null, 'nothing kept yet')
  store.save(saved())
  t.same(store.load(), saved(), 'read back as saved')
  store.save(saved({ ids: Array.from({ length: MAX_IDS + 50 }, (_, i) => `m${i}`) }))
  const ids = store.load()?.ids ?? []
  t.equal(ids.length, MAX_IDS, 'ids bounded')
  t.equal(ids.at(-1), `m${MAX_IDS + 49}`, 'the newest ids kept')

  for (const bad of ['{', 'null', '[]', '"x"', '{"id":1,"token":"t","cursor":null}', '{"id":"i","token":"t","cursor":5}']) {
    storage.map.set('k', bad)
    t.equal(store.load(), null, `not a session: ${bad}`)
  }
  storage.map.set('k', JSON.stringify({ id: 'i', token: 't', cursor: null, rooms: ['ok', 3], seq: -1, ids: 'x' }))
  t.same(store.load(), { id: 'i', token: 't', cursor: null, rooms: ['ok'], seq: 0, total: 0, ids: [], open: false }, 'bad fields read as their defaults')

  storage.failWrites = true
  t.doesNotThrow(() => store.save(saved()), 'a full storage is not an error')
  store.clear()
  t.equal(store.load(), null, 'cleared')
})

t.test('SessionStore: with the session in the origin\'s storage, the position stays per tab', async (t) => {
  const local = new MemoryStorage()
  const tab1 = new MemoryStorage()
  const tab2 = new MemoryStorage()
  new SessionStore(local, tab1, 'k').save(saved({ seq: 7, total: 30, ids: ['x'] }))
  t.notOk(local.getItem('k')?.includes('"seq"'), 'no position in the shared storage')
  t.same(new SessionStore(local, tab1, 'k').load(), saved({ seq: 7, total: 30, ids: ['x'] }))
  t.same(new SessionStore(local, tab2, 'k').load(), saved({ seq: 0, total: 0, ids: [], open: false }), 'another tab: the session, no position')
  new SessionStore(local, tab1, 'k').save(saved({ id: 'other' }))
  tab1.map.set('k:tab', JSON.stringify({ id: 'sid', seq: 9, total: 1, ids: ['y'], open: true }))
  t.same(new SessionStore(local, tab1, 'k').load()?.seq, 0, 'a position of another session is not used')
})

t.test('SessionStore.create picks the page\'s storages', async (t) => {
  const g = globalThis as Record<string, unknown>
  const session = new MemoryStorage()
  const local = new MemoryStorage()
  g.sessionStorage = session
  g.localStorage = local
  t.teardown(() => { delete g.sessionStorage; delete g.localStorage })
  t.equal(SessionStore.create(false, 'k', true), null)
  t.equal(SessionStore.create(undefined, 'k', true), null)
  SessionStore.create('session', 'k', true)?.save(saved())
  t.ok(session.getItem('k') !== null && local.getItem('k') === null, "'session': sessionStorage")
  session.map.clear()
  SessionStore.create('local', 'k', false)?.save(saved())
  t.ok(local.getItem('k') !== null && session.getItem('k:tab') !== null, "'local' in a tab group: the session in localStorage, the position in sessionStorage")
  local.map.clear()
  session.map.clear()
  SessionStore.create('local', 'k', true)?.save(saved())
  t.ok(local.getItem('k') === null && session.getItem('k') !== null, "'local' for a tab alone acts as 'session' (tabs would poll one session against each other)")
  g.sessionStorage = { getItem () { throw new Error('SecurityError') } }
  t.equal(SessionStore.create('session', 'k', true), null, 'a storage that throws: off')
})

t.test('Progress: the position is the last poll response every consumer took', async (t) => {
  const p = new Progress({ cursor: '0', seq: 0, total: 0 }, [])
  for (const id of ['a', 'b']) p.deliver(id)
  p.mark({ cursor: '2', seq: 1, total: 2 })
  for (const id of ['c', 'd', 'e']) p.deliver(id)
  p.mark({ cursor: '5', seq: 2, total: 5 })
  t.same(p.position(5), { cursor: '0', seq: 0, total: 0 }, 'nothing taken')
  t.same(p.takenIds(5), [])
  t.same(p.position(3), { cursor: '2', seq: 1, total: 2 }, 'the first response taken')
  t.same(p.takenIds(2), ['a', 'b', 'c'], 'ids of what was taken, including part of a response')
  t.notOk(p.done(1))
  t.ok(p.done(0), 'all taken')
  t.same(p.position(0), { cursor: '5', seq: 2, total: 5 })
})

t.test('a reload resumes the session: what came meanwhile arrives once, nothing twice', async (t) => {
  const { app, url } = await startServer(t)
  const storage = new MemoryStorage()
  const first = createChatClient<Num>({ url, persist: storage, rooms: ['lobby'] })
  const firstGot = collect(first, 3)
  await first.ready()
  for (let n = 1; n <= 3; n++) await app.longPoll.broadcast({ n })
  t.same((await firstGot).map(m => m.data.n), [1, 2, 3])
  const id = first.id
  await first.close({ keepSession: true })
  t.equal((await app.longPoll.stats()).sessions, 1, 'the session stays')

  for (let n = 4; n <= 6; n++) await app.longPoll.broadcast({ n })
  const second = client(t, { url, persist: storage })
  const sessions: string[] = []
  second.on('session', e => sessions.push(e.id))
  const got = collect(second, 4)
  await second.ready()
  t.equal(second.id, id, 'the same session')
  t.same(second.joinedRooms, ['lobby'], 'with its rooms')
  await delay(100)
  await app.longPoll.broadcast({ n: 7 })
  t.same((await got).map(m => m.data.n), [4, 5, 6, 7], 'what came during the reload, then the rest')
  t.same(sessions, [], 'no new registration')

  await second.close()
  t.equal(storage.getItem(keyOf(url)), null, 'close() forgets the session')
  t.equal((await app.longPoll.stats()).sessions, 0)
})

t.test('messages handed over but not taken yet come again after a reload; taken ones do not', async (t) => {
  const { app, url } = await startServer(t)
  const storage = new MemoryStorage()
  const first = createChatClient<Num>({ url, persist: storage })
  await first.ready()
  for (let n = 1; n <= 4; n++) await app.longPoll.broadcast({ n })
  const it = first[Symbol.asyncIterator]()
  const taken: number[] = []
  for (let i = 0; i < 2; i++) {
    const { value } = await it.next()
    taken.push((value as Extract<ChatMessage<Num>, { type: 'message' }>).data.n)
  }
  // The loop must not acknowledge what the iterator has not taken: it waits instead of polling on.
  await delay(200)
  await first.close({ keepSession: true })

  const second = client(t, { url, persist: storage })
  const got = collect(second, 2)
  t.same(taken, [1, 2])
  t.same((await got).map(m => m.data.n), [3, 4], 'only the two the iterator had not taken')
})

t.test('an expired kept session registers again; a duplicated tab gets its own', async (t) => {
  const { app, url } = await startServer(t)
  const storage = new MemoryStorage()
  const first = createChatClient<Num>({ url, persist: storage })
  await first.ready()
  const old = first.id as string
  await first.close({ keepSession: true })
  await app.longPoll.endSession(old)

  const second = client(t, { url, persist: storage })
  const registered = new Promise<{ id: string, previousId: string | null }>(resolve => second.on('session', resolve))
  const event = await registered
  t.equal(event.previousId, old, 'registered again after the 401')
  t.not(second.id, old)
  t.match(storage.getItem(keyOf(url)) ?? '', second.id as string, 'the new session is kept')

  // A duplicated tab copies sessionStorage while the first tab runs: it must not take the session.
  const copy = storage.clone()
  const third = client(t, { url, persist: copy })
  await third.ready()
  t.not(third.id, second.id, 'the copy registers its own session')
  const got = collect(second, 1)
  await app.longPoll.send(second.id as string, { n: 1 })
  t.same((await got).map(m => m.data.n), [1], 'the first tab goes on')
  t.equal(second.state, 'live')
})

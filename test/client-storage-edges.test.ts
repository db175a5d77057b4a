/**
 * `persist` where the page's storage is odd or fails (lib/client/storage.ts): a storage object
 * that is not one, no sessionStorage beside a working localStorage, a kept record with fields of
 * the wrong type, a storage that throws on remove; and `Progress` over many messages and over
 * poll responses that brought nothing.
 */
import t from 'tap'
import { MAX_IDS, Progress, SessionStore, type Saved } from '../lib/client/storage.js'
import { MemoryStorage } from './helpers/tabs.js'

const saved = (over: Partial<Saved> = {}): Saved => ({
  id: 'sid', token: 'tok', cursor: '4', rooms: ['lobby'], seq: 3, total: 9, ids: ['a'], open: true, ...over
})

t.test('the page\'s storages: one that is not a storage is off; without sessionStorage, localStorage holds the position too', async (t) => {
  const g = globalThis as Record<string, unknown>
  t.teardown(() => { delete g.sessionStorage; delete g.localStorage })
  g.sessionStorage = { setItem () {}, removeItem () {} }
  t.equal(SessionStore.create('session', 'k', true), null, 'no getItem: not a storage')
  g.sessionStorage = null
  t.equal(SessionStore.create('session', 'k', true), null, 'null (a sandboxed frame)')

  const local = new MemoryStorage()
  g.localStorage = local
  g.sessionStorage = { getItem () { throw new Error('SecurityError') } }
  const store = SessionStore.create('local', 'k', false)
  t.ok(store !== null, '\'local\' in a tab group works with localStorage alone')
  store?.save(saved())
  t.same(JSON.parse(local.getItem('k') ?? '{}'), { id: 'sid', token: 'tok', cursor: '4', rooms: ['lobby'], seq: 3, total: 9, ids: ['a'], open: true },
    'session and position in one record (there is no per-tab storage to put the position in)')
  t.same(store?.load(), saved())
  t.equal(SessionStore.create('session', 'k', true), null, '\'session\' without a sessionStorage: off')
})

t.test('a kept record with rooms that are not a list reads with no rooms', async (t) => {
  const storage = new MemoryStorage()
  const store = new SessionStore(storage, storage, 'k')
  storage.map.set('k', JSON.stringify({ id: 'i', token: 't', cursor: '1', rooms: 'lobby', seq: 2, total: 2, ids: ['x'], open: true }))
  t.same(store.load(), { id: 'i', token: 't', cursor: '1', rooms: [], seq: 2, total: 2, ids: ['x'], open: true })
})

t.test('clear(): a storage that throws on remove does not stop the other one from being cleared', async (t) => {
  const main = new MemoryStorage()
  const tab = new MemoryStorage()
  const store = new SessionStore(main, tab, 'k')
  store.save(saved())
  t.ok(main.getItem('k') !== null && tab.getItem('k:tab') !== null)
  main.removeItem = () => { throw new Error('SecurityError') }
  t.doesNotThrow(() => store.clear())
  t.equal(tab.getItem('k:tab'), null, 'the position is gone')
  t.ok(main.getItem('k') !== null, 'the session stays where it could not be removed')
})

t.test('Progress: ids stay bounded over many messages; a response that brought nothing moves the position on', async (t) => {
  const progress = new Progress({ cursor: '0', seq: 0, total: 0 }, [])
  for (let i = 1; i <= 5 * MAX_IDS; i++) progress.deliver(`m${i}`)
  progress.mark({ cursor: 'c1', seq: 1, total: 5 * MAX_IDS })
  const ids = progress.takenIds(0)
  t.equal(ids.length, MAX_IDS)
  t.equal(ids.at(-1), `m${5 * MAX_IDS}`, 'the newest kept')
  t.same(progress.takenIds(10).at(-1), `m${5 * MAX_IDS - 10}`, 'ten not taken yet: not among the taken ids')

  progress.mark({ cursor: 'c2', seq: 2, total: 5 * MAX_IDS })
  t.same(progress.position(10), { cursor: '0', seq: 0, total: 0 }, 'ten of the first response\'s messages not taken: the start still')
  t.same(progress.position(0), { cursor: 'c2', seq: 2, total: 5 * MAX_IDS },
    'all taken: the newest position (the empty response\'s mark replaced the one before, same messages)')
  t.ok(progress.done(0))
})

/**
 * The tab group (lib/client/tabs.ts) on its own, with a host that records what the group hands
 * to its client, over the fake Web Locks and BroadcastChannels of test/helpers/tabs.ts: the
 * paths a browser takes rarely and test/client-tabs.test.ts does not reach through whole clients
 * — batches lost on the channel (asked for again, or given up on), a follower the leader is
 * ahead of, a tab that opens while a batch is under way, a leader that learns it was replaced
 * before its lock says so, the page's lifecycle events, and what the group ignores.
 */
import t, { type Test } from 'tap'
import { TabGroup, type Batch, type HostView, type TabHost, type View } from '../lib/client/tabs.js'
import type { ChannelLike, ChatState, CloseReason, LockManagerLike, SharedOptions } from '../lib/client/types.js'
import type { Message } from '../lib/wire.js'
import { sleep } from './helpers/wait.js'
import { fakePage } from './helpers/page.js'
import { ChannelHub, FakeLocks } from './helpers/tabs.js'

// Long enough that a gap timer (one heartbeat) does not run out before an answer on a busy machine.
const HEARTBEAT = 200
const NAME = 'chat-edges'

/** A message of the group's channel, as far as these tests read them. */
interface Msg { t: string, from: string, to?: string, epoch?: number, after?: number | null, seq?: number, batch?: Batch, view?: View, batches?: Batch[] }

/** The client side of one tab: what the group handed over, in order. */
class Host implements TabHost {
  readonly events: string[] = []
  leads = 0
  state: ChatState = 'live'
  session: { id: string, token: string } | null = { id: 's1', token: 't1' }
  cursor: string | null = '0'
  joined: string[] = ['lobby']

  lead = async (signal: AbortSignal): Promise<void> => {
    this.leads++
    this.events.push('lead')
    await new Promise<void>(resolve => {
      if (signal.aborted) resolve()
      else signal.addEventListener('abort', () => resolve())
    })
    this.events.push('step down')
  }

  view = (): HostView => ({ session: this.session, cursor: this.cursor, rooms: this.joined, state: this.state })
  batch = (b: Batch, late: boolean): void => { this.events.push(`${late ? 'late' : 'batch'} ${b.seq}`) }
  adopt = (v: View): void => { this.events.push(`adopt ${v.seq}`) }
  lost = (count: number): void => { this.events.push(`lost ${count}`) }
  rooms = (rooms: string[]): void => { this.events.push(`rooms ${rooms.join(',')}`) }
  end = (reason: CloseReason, message: string): void => { this.events.push(`end ${reason}: ${message}`) }
  expired = (id: string): void => { this.events.push(`expired ${id}`) }

  /** The batches handed over as new, by number. */
  get fresh (): number[] {
    return this.events.filter(e => e.startsWith('batch ')).map(e => Number(e.slice(6)))
  }
}

interface Tab { name: string, group: TabGroup, host: Host }

interface Browser { hub: ChannelHub, locks: FakeLocks }

const browser = (): Browser => ({ hub: new ChannelHub(), locks: new FakeLocks() })

let count = 0

interface TabOptions {
  after?: number | null
  /** The tab's channel drops what it is sent when this says so (messages a page never got). */
  drop?: (msg: Msg) => boolean
  locks?: LockManagerLike
  name?: string
}

function tab (t: Test, b: Browser, options: TabOptions = {}): Tab {
  const name = options.name ?? `tab${++count}`
  const host = new Host()
  const Channel = options.drop === undefined ? b.hub.channelFor(name) : lossy(b.hub.channelFor(name), options.drop)
  const shared: SharedOptions = { locks: options.locks ?? b.locks.forTab(name, b.hub), BroadcastChannel: Channel, heartbeat: HEARTBEAT, settle: 20 }
  const group = TabGroup.create(NAME, shared, host, options.after === undefined || options.after === null ? null : { seq: options.after, total: 0 }) as TabGroup
  t.teardown(() => group.leave())
  return { name, group, host }
}

/** A channel class whose instances drop what they receive when `drop` says so. */
function lossy (Base: new (name: string) => ChannelLike, drop: (msg: Msg) => boolean): new (name: string) => ChannelLike {
  return class implements ChannelLike {
    onmessage: ((event: { data: unknown }) => void) | null = null
    private readonly inner: ChannelLike
    constructor (name: string) {
      this.inner = new Base(name)
      this.inner.onmessage = (event) => { if (!drop(event.data as Msg)) this.onmessage?.(event) }
    }

    postMessage (message: unknown): void { this.inner.postMessage(message) }
    close (): void { this.inner.close() }
  }
}

/** Another party on the channel, under the test's control: what it hears, and what it says. */
function listener (t: Test, b: Browser): { heard: Msg[], say: (msg: Msg) => void, raw: (data: unknown) => void } {
  const channel = new (b.hub.channelFor(`listener${++count}`))(NAME)
  const heard: Msg[] = []
  channel.onmessage = (event) => { heard.push(event.data as Msg) }
  t.teardown(() => channel.close())
  return { heard, say: (msg) => channel.postMessage(msg), raw: (data) => channel.postMessage(data) }
}

async function until (what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/** The channel is asynchronous (one task per message): lets what is under way arrive. */
const settle = async (): Promise<void> => { for (let i = 0; i < 10; i++) await new Promise(resolve => setImmediate(resolve)) }

let msgId = 0

/** A poll response of `n` messages, as the leading client publishes it. */
const response = (n = 1): Omit<Batch, 'seq' | 'total'> => ({
  session: { id: 's1', token: 't1' },
  cursor: String(++msgId),
  messages: Array.from({ length: n }, () => ({ id: `m${++msgId}`, type: 'message', from: null, data: null, at: 0 }) as unknown as Message),
  missed: 0
})

/** Two tabs, the first leading (and settled), the second following (welcomed). */
async function pair (t: Test, b: Browser, second: TabOptions = {}): Promise<[Tab, Tab]> {
  const a = tab(t, b)
  await until('the first tab to lead', () => a.host.leads === 1)
  const f = tab(t, b, second)
  await until('the second tab to be welcomed', () => f.host.events.includes('adopt 0'))
  f.host.events.length = 0
  return [a, f]
}

t.test('a batch the channel lost is asked for and sent again; one nobody can send is counted lost', async (t) => {
  const b = browser()
  const dropped: number[] = []
  const [a, f] = await pair(t, b, {
    drop: (m) => {
      if (m.t !== 'batch' || m.batch === undefined) return false
      // Batch 2 is lost once (sent again on `need`), batch 5 every time.
      if ((m.batch.seq === 2 && !dropped.includes(2)) || m.batch.seq === 5) {
        dropped.push(m.batch.seq)
        return true
      }
      return false
    }
  })
  const watch = listener(t, b)
  a.group.publish(response())
  a.group.publish(response())
  a.group.publish(response())
  await until('1..3 at the follower', () => f.host.fresh.length === 3)
  t.same(f.host.fresh, [1, 2, 3], 'batch 2, lost on the way, came again after 1 and before 3')
  t.same(watch.heard.filter(m => m.t === 'need').map(m => [m.from, m.after]), [[f.group.tabId, 1]], 'the follower asked once for what came after 1')
  t.same(watch.heard.filter(m => m.t === 'batch').map(m => m.batch?.seq), [1, 2, 3, 2, 3], 'the leader sent again what came after 1')
  t.ok(f.host.events.includes('late 3'), 'batch 3 sent again is handed as late (only new ids count)')

  a.group.publish(response(1))
  a.group.publish(response(4))
  a.group.publish(response(1))
  await until('6 at the follower', () => f.host.fresh.includes(6))
  t.same(f.host.fresh, [1, 2, 3, 4, 6], 'batch 5 never came: the follower went on after a wait')
  t.ok(f.host.events.includes('lost 4'), 'its 4 messages are reported as missed')
  t.same(f.group.position, a.group.position, 'the follower is where the leader is')
  t.equal(a.host.events.filter(e => e.startsWith('batch')).length, 6, 'the leader handed all six over itself')
})

t.test('a follower that lost the last batch learns from the leader\'s pong that it is behind, and asks', async (t) => {
  const b = browser()
  let lost = false
  const [a, f] = await pair(t, b, {
    drop: (m) => {
      if (m.t === 'batch' && m.batch?.seq === 2 && !lost) return (lost = true)
      return false
    }
  })
  const watch = listener(t, b)
  a.group.publish(response())
  a.group.publish(response())
  await until('batch 2 at the follower', () => f.host.fresh.includes(2))
  t.same(f.host.fresh, [1, 2], 'no later batch showed a gap, yet batch 2 came')
  const pong = watch.heard.findIndex(m => m.t === 'pong' && m.seq === 2)
  const need = watch.heard.findIndex(m => m.t === 'need' && m.from === f.group.tabId)
  t.ok(pong >= 0 && need > pong, 'the leader answered a ping with its number; the follower then asked for what it lacked')
  t.equal(watch.heard[need]?.after, 1)
})

t.test('a tab that opens while a batch is under way starts with that batch', async (t) => {
  const b = browser()
  const a = tab(t, b)
  await until('the first tab to lead', () => a.host.leads === 1)
  a.group.publish(response())
  // The new tab's hello reaches the leader after the leader posted batch 2: the welcome counts 2.
  const n = tab(t, b)
  a.group.publish(response(3))
  await until('the new tab to take batch 2', () => n.host.fresh.length > 0)
  t.same(n.host.fresh, [2], 'batch 2 (heard before the welcome that counts it), not batch 1 of the past')
  t.same(n.host.events, ['adopt 2', 'batch 2'])
  t.same(n.group.position, { seq: 2, total: 4 })
})

t.test('a leader replaced while silent, that hears of the new leader before its lock is lost, steps down and catches up', async (t) => {
  const b = browser()
  // The first tab's lock manager tells it late that its lock was taken: in a browser the lock's
  // loss and the channel's messages are separate tasks, in no set order.
  const late = b.locks.forTab('old', b.hub)
  const slow: LockManagerLike = {
    request: (name, options, callback) => late.request(name, options, callback).catch(async (err: unknown) => {
      await sleep(3000)
      throw err
    })
  }
  const a = tab(t, b, { name: 'old', locks: slow })
  await until('the first tab to lead', () => a.host.leads === 1)
  const f = tab(t, b)
  await until('the second tab to follow', () => f.host.events.includes('adopt 0'))
  const watch = listener(t, b)
  for (let i = 0; i < 3; i++) a.group.publish(response())
  await until('1..3 at the follower', () => f.host.fresh.length === 3)

  b.hub.freeze('old')
  await until('the silent leader\'s lock to be taken', () => b.locks.steals === 1)
  await until('the new leader to lead', () => f.host.leads === 1)
  f.group.publish(response())
  f.group.publish(response())
  t.ok(a.group.isLeader, 'the old leader does not know yet (frozen, and its lock tells it late)')

  b.hub.thaw('old')
  await until('the old leader to step down', () => a.host.events.includes('step down'))
  t.notOk(a.group.isLeader, 'it heard a newer leader and stopped leading')
  const again = (): Msg | undefined => watch.heard.find(m => m.t === 'hello' && m.from === a.group.tabId && m.after !== null)
  await until('its hello', () => again() !== undefined)
  t.equal(again()?.after, 0, 'it asked again from a little before its own number (3 - 16, at least 0)')
  await until('batches 4 and 5 at the old leader', () => a.host.fresh.includes(5))
  t.same(a.host.fresh, [1, 2, 3, 4, 5], 'what the new leader had, once, in order')
  t.same(a.host.events.filter(e => e.startsWith('late')), ['late 1', 'late 2', 'late 3'], 'what it had already came as late (the client drops them by id)')
  t.ok(f.group.isLeader, 'the new leader stays')
  t.equal(a.host.leads, 1, 'the old one did not lead again')
})

t.test('the page\'s lifecycle: a hidden leader steps down at once; back, it follows and catches up', async (t) => {
  const b = browser()
  const page = fakePage(t)
  const a = page.run(() => tab(t, b, { name: 'hidden' }))
  await until('the first tab to lead', () => a.host.leads === 1)
  const f = tab(t, b)
  await until('the second tab to follow', () => f.host.events.includes('adopt 0'))
  const watch = listener(t, b)
  a.group.publish(response())
  await until('batch 1 at the follower', () => f.host.fresh.includes(1))

  page.window.dispatchEvent(new Event('pagehide'))
  b.hub.freeze('hidden')
  await until('the other tab to lead', () => f.host.leads === 1)
  t.notOk(a.group.isLeader, 'the hidden tab stepped down')
  t.equal(b.locks.steals, 0, 'its lock was released, not taken')
  f.group.publish(response())
  f.group.publish(response())

  const hellos = (): number => watch.heard.filter(m => m.t === 'hello' && m.from === a.group.tabId).length
  b.hub.thaw('hidden')
  page.window.dispatchEvent(new Event('pageshow'))
  await until('batch 3 at the returning tab', () => a.host.fresh.includes(3))
  t.same(a.host.fresh, [1, 2, 3], 'what came while it was away, once, in order')
  t.equal(hellos(), 1, 'it greeted the group again')
  t.ok(f.group.isLeader)
  t.notOk(a.group.isLeader, 'the returning tab follows')

  page.document.dispatchEvent(new Event('freeze'))
  page.document.dispatchEvent(new Event('resume'))
  page.document.dispatchEvent(new Event('resume'))
  await until('the second hello', () => hellos() === 2)
  f.group.publish(response())
  await until('batch 4 at the returning tab', () => a.host.fresh.includes(4))
  t.equal(hellos(), 2, 'freeze and resume (document) do the same; a resume without a freeze does nothing')
  t.same(a.host.fresh, [1, 2, 3, 4])

  t.same([page.window.listeners, page.document.listeners], [2, 2], 'pagehide and pageshow; freeze and resume')
  await page.run(() => a.group.leave())
  t.same([page.window.listeners, page.document.listeners], [0, 0], 'a tab that left the group no longer listens to the page')
})

t.test('a follower back from a freeze is in the lock\'s queue again (the next to lead when the leader leaves)', async (t) => {
  const b = browser()
  const page = fakePage(t)
  const requests: Array<{ steal: boolean, signal?: AbortSignal }> = []
  const inner = b.locks.forTab('frozen', b.hub)
  const recorded: LockManagerLike = {
    request: (name, options, callback) => {
      requests.push({ steal: options.steal === true, signal: options.signal })
      return inner.request(name, options, callback)
    }
  }
  const a = tab(t, b)
  await until('the first tab to lead', () => a.host.leads === 1)
  const f = page.run(() => tab(t, b, { name: 'frozen', locks: recorded }))
  await until('the second tab to follow', () => f.host.events.includes('adopt 0'))
  page.document.dispatchEvent(new Event('freeze'))
  page.document.dispatchEvent(new Event('resume'))
  await settle()
  t.equal(requests.length >= 1 && requests[0]?.signal?.aborted, true, 'the freeze left the lock\'s queue')
  t.ok(requests.some(r => !r.steal && r.signal?.aborted === false), 'a lock request waits in the queue after the resume')
  await a.group.leave()
  await until('the resumed tab to lead', () => f.group.isLeader)
  t.equal(requests.filter(r => r.steal).length, 0, 'it got the lock from the queue, without stealing it')
  f.group.publish(response())
  t.same(f.host.fresh, [1], 'it leads')
})

t.test('what the group ignores: junk, its own echo, another tab\'s welcome, and an older leader', async (t) => {
  const b = browser()
  const [a, f] = await pair(t, b)
  const peer = listener(t, b)
  a.group.announce()
  await until('the leader\'s view at the follower', () => f.host.events.includes('adopt 0'))
  const current = peer.heard.find(m => m.t === 'view')?.epoch as number
  f.host.events.length = 0
  a.host.events.length = 0

  for (const junk of [null, 'hello', 42, [1, 2]]) peer.raw(junk)
  peer.say({ t: 'rooms', from: f.group.tabId, rooms: ['echo'] } as Msg)
  peer.say({ t: 'welcome', from: 'x', to: 'someone-else', epoch: current + 1, view: { session: null, cursor: null, seq: 50, total: 50, rooms: [], state: 'live' }, batches: [] })
  peer.say({ t: 'view', from: 'x', epoch: current - 1, view: { session: null, cursor: 'old', seq: 60, total: 60, rooms: [], state: 'retrying' } })
  peer.say({ t: 'pong', from: 'x', epoch: current - 1, seq: 70 })
  peer.say({ t: 'lead', from: 'x', epoch: current - 1, after: 0 })
  peer.say({ t: 'sync', from: 'x', to: f.group.tabId, view: { session: null, cursor: 'x', seq: 80, total: 80, rooms: [], state: 'live' }, batches: [] })
  peer.say({ t: 'expired', from: 'x', id: 'old-session' } as Msg)
  await settle()
  t.same(f.host.events, [], 'the follower took none of it: not its own echo, not another tab\'s welcome, not an older leader\'s view or pong')
  t.same(a.host.events, ['rooms echo', 'expired old-session'], 'the leader took the rooms (from another tab) and the expiry (the leader acts on it)')
  t.ok(a.group.isLeader, 'an older leader\'s `lead` does not unseat the leader')
  t.notOk(peer.heard.some(m => m.t === 'sync' && m.from === a.group.tabId), 'nor does the leader answer it')
  t.notOk(peer.heard.some(m => m.t === 'need'), 'an older leader\'s pong ahead of the follower is no reason to ask')
  t.same(f.group.position, { seq: 0, total: 0 })
})

t.test('the session ends or expires from any tab; rooms are shared; a leaving tab says nothing more', async (t) => {
  const b = browser()
  const [a, f] = await pair(t, b)
  a.group.expired('s1')
  f.group.expired('s1')
  await until('the follower\'s report at the leader', () => a.host.events.filter(e => e === 'expired s1').length === 2)
  t.notOk(f.host.events.includes('expired s1'), 'a follower reports an expired session to the leader, which registers again')
  f.group.rooms(['lobby', 'den'])
  await until('the rooms at the leader', () => a.host.events.includes('rooms lobby,den'))
  const peer = listener(t, b)
  f.group.announce()
  a.group.announce()
  await until('the leader\'s view', () => peer.heard.some(m => m.t === 'view'))
  t.same(peer.heard.filter(m => m.t === 'view').map(m => m.from), [a.group.tabId], 'only a leader announces its view')

  await f.group.leave()
  await f.group.leave()
  t.doesNotThrow(() => {
    f.group.rooms(['x'])
    f.group.end('closed', 'bye')
    f.group.expired('s1')
  }, 'its channel is closed: nothing to tell, and no error')
  await settle()
  t.notOk(a.host.events.some(e => e.startsWith('end') || e === 'rooms x'), 'the others heard nothing of it')
  a.group.end('closed', 'the user closed the chat')
  t.equal(f.host.events.filter(e => e.startsWith('end')).length, 0)
})

t.test('the page\'s own Web Locks and BroadcastChannel, with the default timing', async (t) => {
  const g = globalThis as { navigator?: unknown }
  const before = Object.getOwnPropertyDescriptor(globalThis, 'navigator')
  const locks = new FakeLocks()
  Object.defineProperty(globalThis, 'navigator', { value: { locks }, configurable: true, writable: true })
  t.teardown(() => {
    if (before === undefined) delete g.navigator
    else Object.defineProperty(globalThis, 'navigator', before)
  })
  t.ok(TabGroup.supported({}), 'navigator.locks and the global BroadcastChannel')
  const hosts = [new Host(), new Host()]
  const groups = hosts.map(h => TabGroup.create(`native-${process.pid}`, {}, h, null) as TabGroup)
  t.teardown(async () => { for (const group of groups) await group.leave() })
  await until('one tab to lead', () => hosts.some(h => h.leads === 1))
  const lead = groups.find(x => x.isLeader) as TabGroup
  const other = groups.find(x => x !== lead) as TabGroup
  const otherHost = hosts[groups.indexOf(other)] as Host
  await until('the other to be welcomed', () => otherHost.events.includes('adopt 0'))
  lead.publish(response(2))
  await until('the batch at the other tab', () => otherHost.fresh.includes(1))
  t.same(other.position, { seq: 1, total: 2 }, 'batches go over Node\'s BroadcastChannel')

  Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true })
  t.notOk(TabGroup.supported({}), 'no navigator.locks: not supported')
  t.equal(TabGroup.create('x', { BroadcastChannel: class {} as unknown as new (name: string) => ChannelLike }, new Host(), null), null, 'and no group')
  t.notOk(TabGroup.supported({ locks: { request: 'no' } as unknown as LockManagerLike }), 'a lock manager without request()')
})

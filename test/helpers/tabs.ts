/**
 * Fakes of the browser APIs behind the client's `shared` and `persist` options, for Node tests:
 * a Web Locks manager (exclusive locks, a FIFO queue, `signal`, `steal`), BroadcastChannels on a
 * hub (each tab's channel delivers to the other tabs' channels of the same name, asynchronously,
 * in order, structured-cloned), a Map-backed Web Storage, and a fetch that a test can freeze (the
 * tab's requests wait until it thaws, as a frozen page's would).
 */
import type { ChannelLike, ChatStorage, LockManagerLike } from '../../lib/client.js'

interface Request {
  callback: (lock: unknown) => Promise<void>
  resolve: (value: unknown) => void
  reject: (err: unknown) => void
  signal?: AbortSignal
}

const abortError = (): Error => Object.assign(new Error('The lock request was aborted'), { name: 'AbortError' })

export class FakeLocks implements LockManagerLike {
  private readonly held = new Map<string, Request>()
  private readonly queues = new Map<string, Request[]>()
  /** How many times a lock was granted, by name. */
  readonly grants = new Map<string, number>()
  steals = 0

  request (name: string, options: { steal?: boolean, signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const req: Request = { callback, resolve, reject, signal: options.signal }
      if (options.signal?.aborted === true) return reject(abortError())
      if (options.steal === true) {
        const holder = this.held.get(name)
        if (holder !== undefined) {
          this.steals++
          this.held.delete(name)
          holder.reject(abortError())
        }
        this.grant(name, req)
        return
      }
      if (!this.held.has(name)) {
        this.grant(name, req)
        return
      }
      const queue = this.queues.get(name) ?? []
      queue.push(req)
      this.queues.set(name, queue)
      options.signal?.addEventListener('abort', () => {
        const i = queue.indexOf(req)
        if (i >= 0) {
          queue.splice(i, 1)
          reject(abortError())
        }
      })
    })
  }

  holder (name: string): boolean {
    return this.held.has(name)
  }

  /**
   * The lock manager as one tab sees it: while `hub` has the tab frozen, it asks for nothing (a
   * frozen page runs no code): a steal it would ask for fails when it thaws, another request
   * waits until then.
   */
  forTab (tab: string, hub: ChannelHub): LockManagerLike {
    return {
      request: (name, options, callback) => {
        if (!hub.isFrozen(tab)) return this.request(name, options, callback)
        return new Promise((resolve, reject) => {
          hub.onThaw(tab, () => {
            if (options.steal === true) reject(abortError())
            else this.request(name, options, callback).then(resolve, reject)
          })
        })
      }
    }
  }

  private grant (name: string, req: Request): void {
    this.held.set(name, req)
    this.grants.set(name, (this.grants.get(name) ?? 0) + 1)
    setImmediate(() => {
      req.callback({ name }).then((value) => {
        this.release(name, req)
        req.resolve(value)
      }, (err: unknown) => {
        this.release(name, req)
        req.reject(err)
      })
    })
  }

  private release (name: string, req: Request): void {
    if (this.held.get(name) !== req) return
    this.held.delete(name)
    const next = this.queues.get(name)?.shift()
    if (next !== undefined) this.grant(name, next)
  }
}

/** The BroadcastChannels of one browser; `channelFor(tab)` is the constructor one tab's client uses. */
export class ChannelHub {
  private readonly channels = new Set<FakeChannel>()
  private readonly frozen = new Map<string, Array<() => void>>()
  posted = 0
  /** Requests of the tabs' fetch (freezableFetch), by method and path, and by tab, method and path. */
  readonly requests = new Map<string, number>()

  channelFor (tab: string): new (name: string) => ChannelLike {
    const hub = this
    return class extends FakeChannel {
      constructor (name: string) {
        super(hub, tab, name)
      }
    }
  }

  add (channel: FakeChannel): void {
    this.channels.add(channel)
  }

  remove (channel: FakeChannel): void {
    this.channels.delete(channel)
  }

  isFrozen (tab: string): boolean {
    return this.frozen.has(tab)
  }

  /** The tab runs no more tasks: what is sent to it waits; what it posts meanwhile is lost. */
  freeze (tab: string): void {
    if (!this.frozen.has(tab)) this.frozen.set(tab, [])
  }

  thaw (tab: string): void {
    const waiting = this.frozen.get(tab) ?? []
    this.frozen.delete(tab)
    for (const deliver of waiting) deliver()
  }

  /** Runs `fn` when the tab thaws. */
  onThaw (tab: string, fn: () => void): void {
    const waiting = this.frozen.get(tab)
    if (waiting === undefined) fn()
    else waiting.push(fn)
  }

  post (from: FakeChannel, data: unknown): void {
    if (this.frozen.has(from.tab)) return
    this.posted++
    for (const channel of this.channels) {
      if (channel === from || channel.name !== from.name) continue
      const copy = structuredClone(data)
      const deliver = (): void => { setImmediate(() => channel.deliver(copy)) }
      const waiting = this.frozen.get(channel.tab)
      if (waiting !== undefined) waiting.push(deliver)
      else deliver()
    }
  }
}

class FakeChannel implements ChannelLike {
  onmessage: ((event: { data: unknown }) => void) | null = null
  private closed = false

  constructor (private readonly hub: ChannelHub, readonly tab: string, readonly name: string) {
    hub.add(this)
  }

  postMessage (message: unknown): void {
    if (this.closed) throw new Error('InvalidStateError: the channel is closed')
    this.hub.post(this, message)
  }

  deliver (data: unknown): void {
    if (!this.closed) this.onmessage?.({ data })
  }

  close (): void {
    this.closed = true
    this.hub.remove(this)
  }
}

/** A Web Storage over a Map; `failWrites` makes setItem throw (a full quota). */
export class MemoryStorage implements ChatStorage {
  readonly map = new Map<string, string>()
  failWrites = false
  writes = 0

  getItem (key: string): string | null {
    return this.map.get(key) ?? null
  }

  setItem (key: string, value: string): void {
    if (this.failWrites) throw new Error('QuotaExceededError')
    this.writes++
    this.map.set(key, String(value))
  }

  removeItem (key: string): void {
    this.map.delete(key)
  }

  /** A copy, as a duplicated tab gets of sessionStorage. */
  clone (): MemoryStorage {
    const copy = new MemoryStorage()
    for (const [k, v] of this.map) copy.map.set(k, v)
    return copy
  }
}

/** A fetch whose responses wait while `hub` has `tab` frozen (a frozen page runs no callbacks). */
export function freezableFetch (hub: ChannelHub, tab: string): typeof fetch {
  return async (input, init) => {
    const route = `${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`
    for (const key of [route, `${tab} ${route}`]) hub.requests.set(key, (hub.requests.get(key) ?? 0) + 1)
    const res = await fetch(input, init)
    const text = await res.text()
    for (let i = 0; i < 2000 && hub.isFrozen(tab); i++) await new Promise(resolve => setTimeout(resolve, 10))
    return new Response(text === '' ? null : text, { status: res.status, headers: res.headers })
  }
}

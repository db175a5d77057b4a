/**
 * What the cases of the store contract (test/store-contract/index.ts) work with: a fresh store
 * per case, its events recorded, and shortcuts to create sessions, publish and read.
 */
import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import type {
  MailboxStore,
  NewSession,
  OutgoingMessage,
  PublishTarget,
  ReadResult,
  StoreConfig,
  StoreEvent
} from '../../types/index.js'
import { sha256 } from '../helpers/store.js'

export interface ContractStoreFactory {
  /** A fresh, empty store, not yet init'ed; cleanup removes everything it created. */
  (): Promise<{ store: MailboxStore, cleanup: () => Promise<void> }>
}

/** Small limits; TTLs are in the tests' own clock (see `now`), so their size costs no time. */
export const BASE_CONFIG: StoreConfig = {
  messageTtl: 30_000,
  sessionTtl: 60_000,
  maxMailboxMessages: 50,
  maxSessions: 100,
  maxRoomsPerSession: 5
}

/** How long to wait for an event a store may deliver asynchronously. */
const EVENT_TIMEOUT = 3000

export interface TestSession {
  id: string
  token: string
  tokenHash: string
}

/** Records a store's events and lets a test wait for one. */
export class Recorder {
  readonly events: StoreEvent[] = []
  readonly #waiters = new Set<() => void>()

  readonly listener = (event: StoreEvent): void => {
    this.events.push(event)
    for (const w of [...this.#waiters]) w()
  }

  /** Resolves with the first truthy result of `find` over the events recorded from `from` on. */
  async waitFor<T> (what: string, find: (events: StoreEvent[]) => T | undefined | null | false, from = 0): Promise<T> {
    const check = (): T | undefined => {
      const found = find(this.events.slice(from))
      return found === undefined || found === null || found === false ? undefined : found
    }
    const now = check()
    if (now !== undefined) return now
    return await new Promise<T>((resolve, reject) => {
      const waiter = (): void => {
        const found = check()
        if (found === undefined) return
        clearTimeout(timer)
        this.#waiters.delete(waiter)
        resolve(found)
      }
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter)
        reject(new Error(`timed out after ${EVENT_TIMEOUT} ms waiting for ${what}`))
      }, EVENT_TIMEOUT)
      this.#waiters.add(waiter)
    })
  }
}

/** Everything one contract test works with. */
export interface Ctx {
  store: MailboxStore
  rec: Recorder
  /** The test's clock origin (ms); pass `T0 + offset` as `now`. */
  T0: number
  session: (now: number, opts?: { rooms?: string[], profile?: Record<string, unknown> | null }) => Promise<TestSession>
  publish: (target: PublishTarget, data: unknown, now: number) => Promise<{ id: string, recipients: number }>
  /** `read` that fails the test on null / 'bad-cursor', with the messages' `data` decoded. */
  read: (id: string, cursor: number | null, now: number, limit?: number) => Promise<ReadResult & { data: unknown[] }>
  /** Waits until a `poll` event of our own has arrived: every event emitted before it has too. */
  fence: (sessionId: string, now: number) => Promise<void>
}

export function unique (prefix: string): string {
  return `${prefix}-${randomBytes(9).toString('base64url')}`
}

export function sorted (a: Iterable<string>): string[] {
  return [...a].sort()
}

/** Sets up one case: a fresh store from the factory, init'ed with `config`, closed and cleaned up at teardown. */
export type Setup = (tt: Test, config?: Partial<StoreConfig>) => Promise<Ctx>

/** What each theme of cases gets. */
export interface Contract {
  setup: Setup
  factory: ContractStoreFactory
}

export function makeSetup (factory: ContractStoreFactory): Setup {
  return async function setup (tt: Test, config: Partial<StoreConfig> = {}): Promise<Ctx> {
    const { store, cleanup } = await factory()
    const rec = new Recorder()
    await store.init({ ...BASE_CONFIG, ...config }, rec.listener)
    tt.teardown(async () => {
      await store.close()
      await cleanup()
    })
    const T0 = Date.now()

    const ctx: Ctx = {
      store,
      rec,
      T0,
      async session (now, opts = {}) {
        const token = randomBytes(24).toString('base64url')
        const s: NewSession = {
          id: unique('s'),
          tokenHash: sha256(token),
          profile: opts.profile === undefined ? null : opts.profile,
          rooms: opts.rooms ?? []
        }
        tt.equal(await store.createSession(s, now), true, 'createSession succeeds')
        return { id: s.id, token, tokenHash: s.tokenHash }
      },
      async publish (target, data, now) {
        const id = unique('m')
        const wire = {
          id,
          type: 'message',
          from: null,
          room: target.kind === 'room' ? target.room : null,
          to: target.kind === 'session' ? target.id : null,
          data,
          ts: now
        }
        const message: OutgoingMessage = { id, ts: now, json: JSON.stringify(wire), target }
        return { id, recipients: await store.publish(message, now) }
      },
      async read (id, cursor, now, limit = 100) {
        const r = await store.read(id, cursor, limit, now)
        if (r === null || r === 'bad-cursor') {
          tt.fail(`read(${id}, ${cursor}) returned ${String(r)}`)
          throw new Error(`read returned ${String(r)}`)
        }
        return { ...r, data: r.messages.map((m) => (JSON.parse(m) as { data: unknown }).data) }
      },
      async fence (sessionId, now) {
        const seq = await store.beginPoll(sessionId, 1000, now)
        tt.type(seq, 'number', 'fence: beginPoll returns a sequence')
        await rec.waitFor(`the poll event of ${sessionId}`, (evs) =>
          evs.some((e) => e.type === 'poll' && e.sessionId === sessionId && e.seq === seq))
        await store.endPoll(sessionId, seq as number, now)
      }
    }
    return ctx
  }
}

/** The session ids woken by wake events from index `from` on; `all` when one woke everybody. */
export function wokenSince (rec: Recorder, from: number): { all: boolean, ids: string[] } {
  let all = false
  const ids = new Set<string>()
  for (const e of rec.events.slice(from)) {
    if (e.type !== 'wake') continue
    if (e.sessions === null) all = true
    else for (const id of e.sessions) ids.add(id)
  }
  return { all, ids: sorted(ids) }
}

/**
 * What every case of the store contract v2 works with. The rules the suite keeps so that any
 * store (memory, Redis, ...) can pass it:
 * - time is only what the tests pass as `now`: each test starts at the real clock (so a store
 *   that also sets real expiry on its keys as a safety net is not disturbed) and advances it by
 *   hand, far beyond the configured TTLs, without waiting;
 * - cursors are opaque: the suite compares them (equality, order) and sends back only cursors
 *   the store returned, 0 (a new session's first cursor), or one greater than every cursor
 *   returned to the session ("ahead of anything issued": bad-cursor); page cursors are followed,
 *   never computed;
 * - events may arrive asynchronously (a Redis store delivers them through pub/sub), so the tests
 *   wait for the events they expect, and check that an event did NOT happen only after a later
 *   "fence" event (a `poll` event of a session of their own) has arrived;
 * - TTL boundaries are not pinned to the millisecond: "before" and "after" are clearly apart.
 */
import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import type {
  LogTarget, MailboxStore, NewSession, OutgoingMessage, PollResult, ReadResult, StoreConfig, StoreEvent
} from '../../lib/stores/store.js'
import { sha256 } from '../helpers/store.js'

export interface ContractStoreFactory {
  /** A fresh, empty store, not yet init'ed; cleanup removes everything it created. */
  (): Promise<{ store: MailboxStore, cleanup: () => Promise<void> }>
}

export interface ContractOptions {
  /** Runs of the model-based test (default 60; MODEL_RUNS overrides). */
  modelRuns?: number
}

/** Small limits; TTLs are in the tests' own clock (see `now`), so their size costs no time. */
export const BASE_CONFIG: StoreConfig = {
  messageTtl: 30_000,
  sessionTtl: 60_000,
  maxMailboxMessages: 50,
  maxSessions: 100,
  maxRoomsPerSession: 5,
  maxSessionsPerUser: 0,
  history: null
}

/** Reads return everything unless a test says otherwise. */
export const ALL = { limit: 100, maxBytes: 1 << 30 }

/** How long to wait for an event a store may deliver asynchronously. */
const EVENT_TIMEOUT = 3000

export interface TestSession {
  id: string
  token: string
  tokenHash: string
  user: string | null
}

/** The token hash the store is given: SHA-256, hex. */
export const hash = sha256

export function unique (prefix: string): string {
  return `${prefix}-${randomBytes(9).toString('base64url')}`
}

export function sorted (a: Iterable<string>): string[] {
  return [...a].sort()
}

export function decode (json: string): unknown {
  return (JSON.parse(json) as { data: unknown }).data
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

  /** Logs named by wake events from index `from` on, in order. */
  wakes (from: number): string[] {
    const logs: string[] = []
    for (const e of this.events.slice(from)) if (e.type === 'wake') logs.push(e.log)
    return logs
  }
}

export interface SessionOptions {
  rooms?: string[]
  profile?: Record<string, unknown> | null
  user?: string | null
  context?: unknown
}

export type Decoded = ReadResult & { data: unknown[] }

/** Everything one contract test works with. */
export interface Ctx {
  store: MailboxStore
  rec: Recorder
  config: StoreConfig
  /** The test's clock origin (ms); pass `T0 + offset` as `now`. */
  T0: number
  session: (now: number, opts?: SessionOptions) => Promise<TestSession>
  /** Publishes `data` (in a wire message of its own) to `target`; `pad` adds bytes to the JSON. */
  publish: (target: LogTarget, data: unknown, now: number, pad?: number) => Promise<{ id: string, json: string, recipients: number }>
  /** `read` that fails the test on null / 'bad-cursor', with the messages' `data` decoded. */
  read: (id: string, cursor: number | null, now: number, limit?: number, maxBytes?: number) => Promise<Decoded>
  /** `poll` that fails the test unless ok. */
  poll: (s: TestSession, cursor: number | null, now: number, holdMs?: number, limit?: number) => Promise<Extract<PollResult, { ok: true }> & { data: unknown[] }>
  /** Waits until a `poll` event of `fenceSession` has arrived: every event emitted before it has too. */
  fence: (fenceSession: TestSession, now: number) => Promise<void>
}

export type Setup = (t: Test, config?: Partial<StoreConfig>) => Promise<Ctx>

export function makeSetup (factory: ContractStoreFactory): Setup {
  return async function setup (tt, config = {}) {
    const { store, cleanup } = await factory()
    const rec = new Recorder()
    const full = { ...BASE_CONFIG, ...config }
    await store.init(full, rec.listener)
    tt.teardown(async () => {
      await store.close()
      await cleanup()
    })
    const T0 = Date.now()

    const ctx: Ctx = {
      store,
      rec,
      config: full,
      T0,
      async session (now, opts = {}) {
        const token = randomBytes(24).toString('base64url')
        const s: NewSession = {
          id: unique('s'),
          tokenHash: hash(token),
          profile: opts.profile === undefined ? null : opts.profile,
          user: opts.user ?? null,
          context: opts.context === undefined ? null : opts.context,
          rooms: opts.rooms ?? []
        }
        const r = await store.createSession(s, now)
        tt.equal(r.ok, true, 'createSession succeeds')
        if (!r.ok) throw new Error(`createSession returned ${JSON.stringify(r)}`)
        return { id: s.id, token, tokenHash: s.tokenHash, user: s.user }
      },
      async publish (target, data, now, pad = 0) {
        const id = unique('m')
        const wire: Record<string, unknown> = {
          id,
          type: 'message',
          from: null,
          room: target.kind === 'room' ? target.room : null,
          to: target.kind === 'session' ? target.id : null,
          data,
          ts: now
        }
        if (target.kind === 'user') wire.toUser = true
        if (pad > 0) wire.pad = 'x'.repeat(pad)
        const json = JSON.stringify(wire)
        const message: OutgoingMessage = { id, ts: now, json, target }
        return { id, json, recipients: await store.publish(message, now) }
      },
      async read (id, cursor, now, limit = ALL.limit, maxBytes = ALL.maxBytes) {
        const r = await store.read(id, cursor, { limit, maxBytes }, now)
        if (r === null || r === 'bad-cursor') {
          tt.fail(`read(${id}, ${cursor}) returned ${String(r)}`)
          throw new Error(`read returned ${String(r)}`)
        }
        return { ...r, data: r.messages.map(decode) }
      },
      async poll (s, cursor, now, holdMs = 0, limit = ALL.limit) {
        const r = await store.poll(s.tokenHash, cursor, holdMs, { limit, maxBytes: ALL.maxBytes }, now)
        if (!r.ok) {
          tt.fail(`poll(${s.id}, ${cursor}) returned ${JSON.stringify(r)}`)
          throw new Error(`poll returned ${JSON.stringify(r)}`)
        }
        return { ...r, data: r.read.messages.map(decode) }
      },
      async fence (f, now) {
        // The fence session may have mail (broadcasts): take it (cursor null), then hold.
        for (let i = 0; i < 3; i++) {
          const r = await store.poll(f.tokenHash, null, 1000, ALL, now)
          if (!r.ok) throw new Error(`fence: poll returned ${JSON.stringify(r)}`)
          if (r.seq === 0) continue
          await rec.waitFor(`the poll event of ${f.id}`, (evs) =>
            evs.some((e) => e.type === 'poll' && e.sessionId === f.id && e.seq === r.seq))
          await store.endPoll(f.id, r.seq, now)
          return
        }
        throw new Error('fence: the fence session never held a poll')
      }
    }
    return ctx
  }
}

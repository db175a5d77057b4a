/**
 * A MailboxStore for the tests of what the plugin does when its store misbehaves or is slow. It
 * wraps the in-memory store and, on cue: rejects every call while "down" (announced with an
 * `unavailable` event, as the Redis store does; MailboxStore documents any rejection as "the
 * store is unavailable"), rejects the calls of some methods only, or holds back the answers of a
 * method's calls until the test lets them go (the call has happened in the store, as over a slow
 * network), so that a test can put requests and events between a call and its answer.
 */
import { MemoryStore } from '../../lib/index.js'
import type {
  EndedSession, MailboxStore, Member, NewSession, OutgoingMessage, ReadResult, SessionInfo, StoreConfig, StoreEvent, StoreListener, StoreStats
} from '../../types/index.js'

export type StoreMethod = Exclude<keyof MailboxStore, 'init' | 'close'>

interface Gate {
  opened: Promise<void>
  open: () => void
  waiting: number
}

export class FlakyStore implements MailboxStore {
  down = false
  calls = 0
  /** Methods whose calls reject although the store is up. */
  readonly failing = new Set<StoreMethod>()
  /** The sequences `beginPoll` handed out, and the `endPoll` calls, in order. */
  readonly begun: number[] = []
  readonly ended: Array<{ sessionId: string, seq: number }> = []
  private listener: StoreListener | null = null
  private readonly inner: MailboxStore = new MemoryStore()
  private readonly gates = new Map<StoreMethod, Gate>()

  setDown (down: boolean): void {
    this.down = down
    if (down) this.listener?.({ type: 'unavailable' })
  }

  /** Hands an event to the plugin as if the store had emitted it (another instance's, say). */
  emit (event: StoreEvent): void {
    this.listener?.(event)
  }

  /** From now on, the answers of `method`'s calls wait until `release(method)`. */
  hold (method: StoreMethod): void {
    let open = (): void => {}
    const opened = new Promise<void>((resolve) => { open = resolve })
    this.gates.set(method, { opened, open, waiting: 0 })
  }

  /** How many answers of `method` are held back now. */
  waiting (method: StoreMethod): number {
    return this.gates.get(method)?.waiting ?? 0
  }

  /** Lets the held answers of `method` go, in the order of the calls; later calls are not held. */
  release (method: StoreMethod): void {
    const gate = this.gates.get(method)
    this.gates.delete(method)
    gate?.open()
  }

  private guard<T> (method: StoreMethod, fn: () => Promise<T>): Promise<T> {
    this.calls++
    if (this.down || this.failing.has(method)) return Promise.reject(new Error(`connection refused (simulated: ${method})`))
    const gate = this.gates.get(method)
    if (gate === undefined) return fn()
    gate.waiting++
    return fn().then(async (value) => {
      await gate.opened
      gate.waiting--
      return value
    })
  }

  init (config: StoreConfig, listener: StoreListener): Promise<void> {
    this.listener = listener
    return this.inner.init(config, listener)
  }

  createSession (session: NewSession, now: number): Promise<boolean> { return this.guard('createSession', () => this.inner.createSession(session, now)) }
  authenticate (tokenHash: string, now: number): Promise<SessionInfo | null> { return this.guard('authenticate', () => this.inner.authenticate(tokenHash, now)) }
  endSession (sessionId: string): Promise<EndedSession | null> { return this.guard('endSession', () => this.inner.endSession(sessionId)) }
  join (sessionId: string, room: string): Promise<'joined' | 'already' | 'too-many' | 'no-session'> { return this.guard('join', () => this.inner.join(sessionId, room)) }
  leave (sessionId: string, room: string): Promise<boolean> { return this.guard('leave', () => this.inner.leave(sessionId, room)) }
  members (room?: string): Promise<Member[]> { return this.guard('members', () => this.inner.members(room)) }
  publish (message: OutgoingMessage, now: number): Promise<number> { return this.guard('publish', () => this.inner.publish(message, now)) }
  read (sessionId: string, cursor: number | null, limit: number, now: number): Promise<ReadResult | 'bad-cursor' | null> { return this.guard('read', () => this.inner.read(sessionId, cursor, limit, now)) }
  sweep (now: number): Promise<EndedSession[]> { return this.guard('sweep', () => this.inner.sweep(now)) }
  stats (): Promise<StoreStats> { return this.guard('stats', () => this.inner.stats()) }
  close (): Promise<void> { return this.inner.close() }

  beginPoll (sessionId: string, holdMs: number, now: number): Promise<number | null> {
    return this.guard('beginPoll', async () => {
      const seq = await this.inner.beginPoll(sessionId, holdMs, now)
      if (seq !== null) this.begun.push(seq)
      return seq
    })
  }

  endPoll (sessionId: string, seq: number, now: number): Promise<void> {
    return this.guard('endPoll', async () => {
      this.ended.push({ sessionId, seq })
      await this.inner.endPoll(sessionId, seq, now)
    })
  }
}

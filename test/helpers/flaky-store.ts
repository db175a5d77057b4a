/**
 * A MailboxStore for the tests of what the plugin does when its store misbehaves or is slow. It
 * wraps the in-memory store and answers every call with a Promise, as a remote store does, and,
 * on cue: rejects every call while "down" (announced with an `unavailable` event, as the Redis
 * store does; the store interface documents any rejection as "the store is unavailable"), rejects
 * the calls of some methods only, or holds back the answers of a method's calls until the test
 * lets them go (the call has happened in the store, as over a slow network), so that a test can
 * put requests and events between a call and its answer.
 */
import { MemoryStore } from '../../lib/index.js'
import type {
  AuthResult, CreateResult, EndedSession, JoinResult, MailboxStore, Member, NewSession, OutgoingMessage, Page,
  PollResult, RateCheck, ReadOptions, ReadResult, StoreConfig, StoreEvent, StoreListener, StoreStats
} from '../../lib/stores/store.js'

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
  /** The hold sequences `poll` handed out (0: answered at once), and the `endPoll` calls, in order. */
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

  private guard<T> (method: StoreMethod, fn: () => T | Promise<T>): Promise<T> {
    this.calls++
    if (this.down || this.failing.has(method)) return Promise.reject(new Error(`connection refused (simulated: ${method})`))
    const gate = this.gates.get(method)
    const answer = Promise.resolve().then(fn)
    if (gate === undefined) return answer
    gate.waiting++
    return answer.then(async (value) => {
      await gate.opened
      gate.waiting--
      return value
    })
  }

  init (config: StoreConfig, listener: StoreListener): Promise<void> {
    this.listener = listener
    return this.inner.init(config, listener)
  }

  createSession (session: NewSession, now: number, rate?: RateCheck & { key: string }): Promise<CreateResult> { return this.guard('createSession', () => this.inner.createSession(session, now, rate)) }
  authenticate (tokenHash: string, now: number, rate?: RateCheck): Promise<AuthResult> { return this.guard('authenticate', () => this.inner.authenticate(tokenHash, now, rate)) }
  refund (sessionId: string, bucket: string, now: number): Promise<void> { return this.guard('refund', () => this.inner.refund(sessionId, bucket, now)) }
  read (sessionId: string, cursor: number | null, options: ReadOptions, now: number, seq?: number): Promise<ReadResult | 'bad-cursor' | null> { return this.guard('read', () => this.inner.read(sessionId, cursor, options, now, seq)) }
  lookup (sessionId: string, now: number): Promise<{ id: string, user: string | null } | null> { return this.guard('lookup', () => this.inner.lookup(sessionId, now)) }
  endSession (sessionId: string): Promise<EndedSession | null> { return this.guard('endSession', () => this.inner.endSession(sessionId)) }
  endUser (user: string): Promise<EndedSession[]> { return this.guard('endUser', () => this.inner.endUser(user)) }
  userSessions (user: string, now: number): Promise<Member[]> { return this.guard('userSessions', () => this.inner.userSessions(user, now)) }
  join (sessionId: string, room: string, now: number, history?: number): Promise<JoinResult> { return this.guard('join', () => this.inner.join(sessionId, room, now, history)) }
  leave (sessionId: string, room: string, now: number): Promise<{ left: boolean, size: number }> { return this.guard('leave', () => this.inner.leave(sessionId, room, now)) }
  members (room: string | null, after: string | null, limit: number, now: number): Promise<Page<Member>> { return this.guard('members', () => this.inner.members(room, after, limit, now)) }
  history (room: string, before: string | null, limit: number, now: number): Promise<Page<string>> { return this.guard('history', () => this.inner.history(room, before, limit, now)) }
  publish (message: OutgoingMessage, now: number): Promise<number> { return this.guard('publish', () => this.inner.publish(message, now)) }
  sweep (now: number, limit: number): Promise<EndedSession[]> { return this.guard('sweep', () => this.inner.sweep(now, limit)) }
  stats (): Promise<StoreStats> { return this.guard('stats', () => this.inner.stats()) }
  close (): Promise<void> { return this.inner.close() }

  poll (tokenHash: string, cursor: number | null, holdMs: number, options: ReadOptions, now: number): Promise<PollResult> {
    return this.guard('poll', async () => {
      const result = await this.inner.poll(tokenHash, cursor, holdMs, options, now)
      if (result.ok) this.begun.push(result.seq)
      return result
    })
  }

  endPoll (sessionId: string, seq: number, now: number): Promise<void> {
    return this.guard('endPoll', async () => {
      this.ended.push({ sessionId, seq })
      await this.inner.endPoll(sessionId, seq, now)
    })
  }
}

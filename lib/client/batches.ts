/**
 * The order of a tab group's batches (see tabs.ts): each poll response the leader shares is a
 * batch with a sequence number; every tab hands the batches to its application in that order,
 * once. `BatchLog` is one tab's record: the newest number it handed over, the recent batches (to
 * give to a tab that missed them), batches that came after a gap (held until it is filled or
 * given up on), and where a new or returning tab starts.
 */
import type { Message } from '../wire.js'
import type { ChatState } from './types.js'

export interface SharedSession { id: string, token: string }

/** One poll response as the group shares it. */
export interface Batch {
  seq: number
  /** Messages in the group's batches up to this one, included. */
  total: number
  session: SharedSession
  cursor: string | null
  messages: Message[]
  missed: number
}

/** What a tab knows of the group: the session, the newest cursor, the rooms and the leader's state. */
export interface View {
  session: SharedSession | null
  cursor: string | null
  seq: number
  total: number
  rooms: string[]
  state: ChatState
}

/** Where the batches go: the client (index.ts). */
export interface BatchSink {
  /** A batch in group order; `late` when the tab had passed its number (only new ids count). */
  batch: (batch: Batch, late: boolean) => void
  /** Newer session, cursor, rooms or state than this tab had. */
  adopt: (view: View) => void
  /** Messages this tab can no longer get (it came back later than the recent batches reach). */
  lost: (count: number) => void
}

/** Recent batches kept by every tab (for gaps, returning tabs and a new leader). */
const RING_BATCHES = 64
const RING_MESSAGES = 1000

export class BatchLog {
  seq = 0
  total = 0
  /** False until the tab knows where it stands (a welcome, or it leads). */
  synced = false
  /** No position of its own yet (a new tab): it starts from the group's present. */
  private fresh: boolean
  private readonly ring: Batch[] = []
  private readonly early = new Map<number, Batch>()
  private gapTimer: ReturnType<typeof setTimeout> | undefined

  /**
   * `after`: the number this tab reached before a reload (null for a new tab); `need` asks the
   * group for the batches after a number; a gap not filled within `gapMs` is given up on;
   * `total`: the message count handed over up to `after` (so that what it missed later is counted
   * from there, not from 0).
   */
  constructor (after: number | null, private readonly sink: BatchSink, private readonly need: (after: number) => void, private readonly gapMs: number, total = 0) {
    this.fresh = after === null
    if (after !== null) {
      this.seq = after
      this.total = total
    }
  }

  /** The recent batches after `after`. */
  since (after: number | null): Batch[] {
    return after === null ? [] : this.ring.filter(b => b.seq > after)
  }

  /** Leader: numbers a new poll response. */
  next (batch: Omit<Batch, 'seq' | 'total'>): Batch {
    return { ...batch, seq: this.seq + 1, total: this.total + batch.messages.length }
  }

  /** A batch as it comes (live, or sent again): handed over in order, or held until the tab is synced. */
  add (batch: Batch): void {
    if (!this.synced) {
      if (batch.seq > this.seq || this.fresh) this.early.set(batch.seq, batch)
      return
    }
    if (batch.seq > this.seq + 1) {
      this.early.set(batch.seq, batch)
      if (this.gapTimer === undefined) {
        this.need(this.seq)
        this.gapTimer = setTimeout(() => this.skipGap(), this.gapMs)
      }
      return
    }
    this.acceptOne(batch)
    this.flush()
  }

  /** The leader is at `seq`: ask for what this tab lacks (it missed batches without a gap to show it). */
  behind (seq: number): void {
    if (!this.synced || seq <= this.seq || this.gapTimer !== undefined) return
    this.need(this.seq)
    this.gapTimer = setTimeout(() => this.stop(), this.gapMs)
  }

  /** A follower's welcome: the leader's view and the batches this tab missed. */
  catchUp (view: View, batches: Batch[]): void {
    if (this.synced) return
    if (this.fresh) {
      // A new tab starts from the present: the batches it heard since it opened, if any.
      const heard = [...this.early.keys()].filter(seq => seq <= view.seq)
      const first = heard.length === 0 ? view.seq + 1 : Math.min(...heard)
      this.seq = first - 1
      this.total = Math.max(0, view.total - heard.reduce((n, seq) => n + (this.early.get(seq) as Batch).messages.length, 0))
      this.fresh = false
    } else {
      // Batches up to its own number: only what it lacks counts (a tab replaced while it led).
      for (const b of batches.filter(b => b.seq <= this.seq).sort((x, y) => x.seq - y.seq)) this.sink.batch(b, true)
      for (const b of batches) if (b.seq > this.seq) this.early.set(b.seq, b)
      if (this.early.size === 0 && view.seq > this.seq) {
        this.sink.lost(Math.max(0, view.total - this.total))
        this.seq = view.seq
        this.total = view.total
      }
    }
    this.synced = true
    this.sink.adopt(view)
    this.skipGap()
  }

  /** New leader: what another tab has (its view and its batches after this tab's number). */
  merge (view: View, batches: Batch[]): void {
    if (this.fresh) {
      // A new tab that leads starts from the group's present, not from its past.
      this.fresh = false
      this.seq = view.seq
      this.total = view.total
      this.sink.adopt(view)
      return
    }
    for (const b of batches) if (b.seq > this.seq) this.early.set(b.seq, b)
    this.flush()
    if (view.seq > this.seq && this.early.size === 0) {
      this.seq = view.seq
      this.total = view.total
      this.sink.adopt(view)
    }
  }

  /** New leader, after hearing the others: goes on from what there is. */
  settle (): void {
    this.fresh = false
    this.synced = true
    this.skipGap()
  }

  /** Back from a freeze: batches may have gone by; wait for the leader's welcome again. */
  unsync (): void {
    this.synced = false
  }

  stop (): void {
    clearTimeout(this.gapTimer)
    this.gapTimer = undefined
  }

  /** Goes on past batches nobody sent (counted as lost), then hands over the rest. */
  private skipGap (): void {
    this.stop()
    if (this.early.size > 0) {
      const first = Math.min(...this.early.keys())
      if (first > this.seq + 1) {
        const b = this.early.get(first) as Batch
        this.sink.lost(Math.max(0, b.total - b.messages.length - this.total))
        this.seq = first - 1
        this.total = b.total - b.messages.length
      }
    }
    this.flush()
  }

  private acceptOne (batch: Batch): void {
    if (batch.seq <= this.seq) {
      this.sink.batch(batch, true)
      return
    }
    this.seq = batch.seq
    this.total = Math.max(this.total, batch.total)
    this.ring.push(batch)
    let count = this.ring.reduce((n, b) => n + b.messages.length, 0)
    while (this.ring.length > RING_BATCHES || (this.ring.length > 1 && count > RING_MESSAGES)) {
      count -= (this.ring.shift() as Batch).messages.length
    }
    this.sink.batch(batch, false)
  }

  /** Hands over the held batches that are next in order. */
  private flush (): void {
    while (this.early.size > 0) {
      const seq = Math.min(...this.early.keys())
      if (seq > this.seq + 1) break
      const batch = this.early.get(seq) as Batch
      this.early.delete(seq)
      this.acceptOne(batch)
    }
    if (this.early.size === 0) this.stop()
  }
}

/**
 * One session and one held poll per browser (the `shared` option): the tabs of an origin that
 * use the same chat form a group. One tab leads: it holds a Web Lock (`navigator.locks`) named
 * after the chat, polls, and posts each poll response (a *batch*) on a `BroadcastChannel`; the
 * other tabs wait in the lock's queue and hand the batches to their application. Every tab sends,
 * joins, leaves and reads members itself, with the shared token (it comes over the channel,
 * never in a URL).
 *
 * Order and handover:
 * - batches carry a sequence number; each tab hands them over in that order (a gap is filled
 *   from the leader's recent batches, `need`), and drops messages it has by id;
 * - the leader posts a batch before its next poll acknowledges it, so a cursor the server has
 *   acknowledged is one every live tab was sent;
 * - a new leader (the next in the lock's queue when the leader's tab closes, or steps down on
 *   `freeze` and `pagehide`) first asks the others what they have (`lead`, answered by `sync`
 *   with their newest batches) and polls on from the newest cursor any of them saw;
 * - followers ping a silent leader; one that does not answer (a frozen or hung tab that kept its
 *   lock) is replaced by stealing the lock. A leader that hears of a newer one steps down.
 *
 * This file knows nothing of HTTP: the client (index.ts) is its `TabHost`.
 */
import { BatchLog, type Batch, type BatchSink, type View } from './batches.js'
import { pageLifecycle, sleep } from './queue.js'
import type { ChannelLike, CloseReason, LockManagerLike, SharedOptions } from './types.js'

export type { Batch, SharedSession, View } from './batches.js'

/** The part of a view the client keeps (the group adds its sequence numbers). */
export type HostView = Omit<View, 'seq' | 'total'>

export interface TabHost extends BatchSink {
  /** This tab leads: poll until `signal` aborts (then stop soon: the lock is released at once). */
  lead: (signal: AbortSignal) => Promise<void>
  view: () => HostView
  rooms: (rooms: string[]) => void
  /** Another tab ended the session (`close()`, or a refused registration). */
  end: (reason: CloseReason, message: string) => void
  /** A tab met a 401 with this session id (leader: register again if it is still the session). */
  expired: (id: string) => void
}

type Msg =
  | { t: 'hello', from: string, after: number | null }
  | { t: 'welcome', from: string, to: string, epoch: number, view: View, batches: Batch[] }
  | { t: 'batch', from: string, epoch: number, batch: Batch }
  | { t: 'view', from: string, epoch: number, view: View }
  | { t: 'ping', from: string }
  | { t: 'pong', from: string, epoch: number, seq: number }
  | { t: 'lead', from: string, epoch: number, after: number }
  | { t: 'sync', from: string, to: string, view: View, batches: Batch[] }
  | { t: 'need', from: string, after: number }
  | { t: 'rooms', from: string, rooms: string[] }
  | { t: 'expired', from: string, id: string }
  | { t: 'end', from: string, reason: CloseReason, message: string }

/** Batches asked for again, before its own newest, by a tab that was replaced while it led. */
const RESYNC_OVERLAP = 16

export class TabGroup {
  readonly tabId = Math.random().toString(36).slice(2) + Date.now().toString(36)
  private readonly log: BatchLog
  private readonly heartbeat: number
  private readonly settleMs: number
  /** The newest leader's epoch this tab knows (a leader's start time, made unique by +1). */
  private epoch = 0
  private queued: AbortController | null = null
  private leading: AbortController | null = null
  private leadDone: Promise<void> = Promise.resolve()
  private heardAt = 0
  private pingAt: number | null = null
  private heardPeer = false
  private suspended = false
  private closed = false
  private readonly timer: ReturnType<typeof setInterval>
  private readonly onFreeze = (): void => this.suspend()
  private readonly onResume = (): void => this.resume()

  /** Web Locks and BroadcastChannel, from `options` or the page; null when either is missing. */
  private static apis (options: SharedOptions): { locks: LockManagerLike, Channel: new (name: string) => ChannelLike } | null {
    const locks = options.locks ?? (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks
    const Channel = options.BroadcastChannel ?? (globalThis as { BroadcastChannel?: new (name: string) => ChannelLike }).BroadcastChannel
    if (locks === undefined || locks === null || typeof locks.request !== 'function' || typeof Channel !== 'function') return null
    return { locks, Channel }
  }

  static supported (options: SharedOptions): boolean {
    return TabGroup.apis(options) !== null
  }

  /** A group, or null when Web Locks or BroadcastChannel are missing (the client polls alone). */
  /** `after`: the position (sequence number and message count) this tab reached before a reload; null for a new tab. */
  static create (name: string, options: SharedOptions, host: TabHost, after: { seq: number, total: number } | null): TabGroup | null {
    const apis = TabGroup.apis(options)
    return apis === null ? null : new TabGroup(name, apis.locks, new apis.Channel(name), options, host, after)
  }

  private constructor (
    private readonly name: string, private readonly locks: LockManagerLike, private readonly channel: ChannelLike,
    options: SharedOptions, private readonly host: TabHost, position: { seq: number, total: number } | null
  ) {
    const after = position === null ? null : position.seq
    this.heartbeat = Math.max(20, options.heartbeat ?? 1000)
    this.settleMs = Math.max(0, options.settle ?? 150)
    this.log = new BatchLog(after, host, (seq) => this.post({ t: 'need', from: this.tabId, after: seq }), this.heartbeat, position?.total ?? 0)
    channel.onmessage = (event) => this.receive(event.data as Msg)
    this.post({ t: 'hello', from: this.tabId, after })
    this.pingAt = Date.now()
    this.queue(false)
    this.timer = setInterval(() => this.tick(), this.heartbeat)
    pageLifecycle(true, { hide: this.onFreeze, show: this.onResume })
  }

  /** The newest sequence number and message count this tab handed over. */
  get position (): { seq: number, total: number } {
    return { seq: this.log.seq, total: this.log.total }
  }

  get isLeader (): boolean {
    return this.leading !== null && !this.leading.signal.aborted
  }

  /** Leader: shares a poll response (before the next poll acknowledges it) and hands it over here. */
  publish (batch: Omit<Batch, 'seq' | 'total'>): void {
    const full = this.log.next(batch)
    this.post({ t: 'batch', from: this.tabId, epoch: this.epoch, batch: full })
    this.log.add(full)
  }

  /** Leader: the session, state or rooms changed. */
  announce (): void {
    if (this.isLeader) this.post({ t: 'view', from: this.tabId, epoch: this.epoch, view: this.view() })
  }

  /** This tab joined or left a room: the others update their list. */
  rooms (rooms: string[]): void {
    this.post({ t: 'rooms', from: this.tabId, rooms })
  }

  expired (id: string): void {
    if (this.isLeader) this.host.expired(id)
    else this.post({ t: 'expired', from: this.tabId, id })
  }

  /** Ends the session for every tab. */
  end (reason: CloseReason, message: string): void {
    this.post({ t: 'end', from: this.tabId, reason, message })
  }

  /** Leaves the group: steps down (the next tab leads), waits for the poll loop, stops listening. */
  async leave (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    this.log.stop()
    pageLifecycle(false, { hide: this.onFreeze, show: this.onResume })
    this.queued?.abort()
    this.leading?.abort()
    await this.leadDone
    this.channel.onmessage = null
    this.channel.close()
  }

  /* ---------------------------------------------------------------------------------------- */

  private view (): View {
    return { ...this.host.view(), ...this.position }
  }

  private post (message: Msg): void {
    try {
      this.channel.postMessage(message)
    } catch {
      // A closed channel (the page is going away): nothing to tell.
    }
  }

  /** Joins the lock's queue (or takes the lock from a leader that does not answer). */
  private queue (steal: boolean): void {
    if (this.closed || this.suspended || this.leading !== null) return
    if (steal) {
      this.queued?.abort()
      this.queued = null
    } else if (this.queued !== null) {
      return
    }
    const queued = new AbortController()
    if (!steal) this.queued = queued
    let lead: AbortController | null = null
    let granted = false
    let lost = false
    this.locks.request(this.name, steal ? { steal: true } : { signal: queued.signal }, async () => {
      granted = true
      if (this.queued === queued) this.queued = null
      // `lost`: stolen between the grant and this call (two tabs took it at once).
      if (lost || this.closed || this.suspended || this.leading !== null) return
      const mine = new AbortController()
      lead = mine
      this.leading = mine
      let done: () => void = () => {}
      this.leadDone = new Promise(resolve => { done = resolve })
      const stopped = new Promise<void>(resolve => mine.signal.addEventListener('abort', () => resolve()))
      const loop = (async () => {
        await this.takeOver(mine.signal)
        if (!mine.signal.aborted) await this.host.lead(mine.signal)
      })().catch(() => {}).finally(() => {
        mine.abort()
        done()
      })
      // Released as soon as this tab steps down, while its poll loop winds down.
      await Promise.race([loop, stopped])
      if (this.leading === mine) this.leading = null
      queueMicrotask(() => this.queue(false))
    }).catch(() => {
      lost = true
      // Stolen while held (a tab found this one silent): stop leading; the callback re-queues.
      const held = lead as AbortController | null
      if (held !== null && !held.signal.aborted) {
        held.abort()
        this.resync()
      }
      // Not granted: this tab left the queue (to steal, or to close), or a steal failed: queue again.
      if (!granted && steal) this.queue(false)
    })
  }

  /** New leader: asks the other tabs for what they have that this one may lack, briefly. */
  private async takeOver (signal: AbortSignal): Promise<void> {
    this.epoch = Math.max(this.epoch, Date.now()) + 1
    if (this.heardPeer) {
      this.post({ t: 'lead', from: this.tabId, epoch: this.epoch, after: this.log.seq })
      const wait = sleep(this.settleMs)
      signal.addEventListener('abort', wait.cancel)
      await wait.promise
    }
    this.log.settle()
    this.announce()
  }

  private suspend (): void {
    this.suspended = true
    // Out of the lock's queue: resume() joins it again (a request left aborted would keep it out).
    this.queued?.abort()
    this.queued = null
    this.leading?.abort()
  }

  private resume (): void {
    if (!this.suspended || this.closed) return
    this.suspended = false
    this.log.unsync()
    this.heardAt = 0
    this.pingAt = Date.now()
    this.post({ t: 'hello', from: this.tabId, after: this.log.seq })
    this.queue(false)
  }

  /** Followers: ping a silent leader (or greet it again, before a welcome); replace one that does not answer. */
  private tick (): void {
    if (this.closed || this.suspended || this.leading !== null) return
    const now = Date.now()
    if (this.pingAt === null) {
      if (now - this.heardAt < this.heartbeat) return
      this.pingAt = now
      this.post(this.log.synced ? { t: 'ping', from: this.tabId } : { t: 'hello', from: this.tabId, after: this.log.seq })
    } else if (now - this.pingAt > this.heartbeat * 2 + Math.random() * this.heartbeat) {
      this.pingAt = null
      this.queue(true)
    }
  }

  /** A message of a leader: it is alive; a newer one than this tab means this tab follows now. */
  private heardLeader (epoch: number): void {
    if (epoch < this.epoch) return
    this.heardAt = Date.now()
    this.pingAt = null
    if (epoch > this.epoch) {
      this.epoch = epoch
      if (this.isLeader) {
        this.leading?.abort()
        this.resync()
      }
    }
  }

  /**
   * This tab led while another one took over (it was silent: hung, or frozen without a `freeze`):
   * what it was sent meanwhile is lost, and the batches it shared since may carry the numbers of
   * other batches. It asks the new leader again, from a little before, and keeps what is new by id.
   */
  private resync (): void {
    this.log.unsync()
    this.pingAt = Date.now()
    this.post({ t: 'hello', from: this.tabId, after: Math.max(0, this.log.seq - RESYNC_OVERLAP) })
  }

  private receive (msg: Msg): void {
    if (this.closed || typeof msg !== 'object' || msg === null || msg.from === this.tabId) return
    this.heardPeer = true
    switch (msg.t) {
      case 'hello':
        if (this.isLeader && this.log.synced) {
          this.post({ t: 'welcome', from: this.tabId, to: msg.from, epoch: this.epoch, view: this.view(), batches: this.log.since(msg.after) })
        }
        break
      case 'welcome':
        if (msg.to !== this.tabId || this.leading !== null) break
        this.heardLeader(msg.epoch)
        this.log.catchUp(msg.view, msg.batches)
        break
      case 'batch':
        this.heardLeader(msg.epoch)
        this.log.add(msg.batch)
        break
      case 'view':
        if (msg.epoch < this.epoch) break
        this.heardLeader(msg.epoch)
        if (this.log.synced) {
          this.host.adopt(msg.view)
          this.log.behind(msg.view.seq)
        }
        break
      case 'ping':
        if (this.isLeader) this.post({ t: 'pong', from: this.tabId, epoch: this.epoch, seq: this.log.seq })
        break
      case 'pong':
        this.heardLeader(msg.epoch)
        if (msg.epoch >= this.epoch) this.log.behind(msg.seq)
        break
      case 'lead':
        if (msg.epoch <= this.epoch && this.isLeader) break
        this.heardLeader(msg.epoch)
        this.post({ t: 'sync', from: this.tabId, to: msg.from, view: this.view(), batches: this.log.since(msg.after) })
        break
      case 'sync':
        if (msg.to === this.tabId && this.isLeader) this.log.merge(msg.view, msg.batches)
        break
      case 'need':
        if (this.isLeader) for (const batch of this.log.since(msg.after)) this.post({ t: 'batch', from: this.tabId, epoch: this.epoch, batch })
        break
      case 'rooms':
        this.host.rooms(msg.rooms)
        break
      case 'expired':
        if (this.isLeader) this.host.expired(msg.id)
        break
      case 'end':
        this.host.end(msg.reason, msg.message)
        break
    }
  }
}

/**
 * The delivery core: stamps and serializes each message once and hands it to the store (which
 * appends it to one log), sends the presence notices (`join`/`leave`, only in rooms of at most
 * `presenceLimit` members), announces sessions that end or expire, and runs the sweep loop.
 * Held polls (wake-ups, timeouts, 409, 401, 503) live in held-poll.ts.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { MessageType } from './wire.js'
import type { EndedSession, LogTarget, MailboxStore } from './stores/store.js'
import { StoreUnavailableError } from './errors.js'
import type { ResolvedOptions } from './options.js'
import { idGenerator } from './util.js'

/** Sessions one `store.sweep` call may remove; the loop calls again (after yielding to I/O) while it gets that many. */
export const SWEEP_BATCH = 500

export interface Sent {
  id: string
  ts: number
  recipients: number
}

/** How a message is addressed on the wire besides its log (`to`, and `toUser` for a person). */
export interface Addressing {
  /** The `to` field: the addressed session id, or null. */
  to: string | null
  /** Sent to a person: the message gets `"toUser": true`. */
  toUser: boolean
}

const NOT_ADDRESSED: Addressing = { to: null, toUser: false }

type CoreOptions = Pick<ResolvedOptions, 'presenceLimit' | 'sweepInterval' | 'onSessionEnd'>

export class DeliveryCore {
  closed = false
  private readonly nextId = idGenerator()
  private sweepTimer: NodeJS.Timeout | undefined
  private sweeping: Promise<void> | null = null

  constructor (
    readonly store: MailboxStore,
    private readonly opts: CoreOptions,
    readonly log: FastifyBaseLogger
  ) {}

  /** Store calls off the poll path go through here: any throw or rejection becomes 503 LONGPOLL_STORE_UNAVAILABLE. */
  async call<T> (fn: () => T | Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      this.log.warn({ err }, 'long-poll store unavailable')
      throw new StoreUnavailableError()
    }
  }

  /**
   * Stamps id and ts, serializes the message once (around `dataJson`, the caller's
   * `JSON.stringify(data)`, never done twice) and appends it to its log.
   */
  async publish (type: MessageType, from: string | null, target: LogTarget, dataJson: string, addressing: Addressing = NOT_ADDRESSED): Promise<Sent> {
    const id = this.nextId()
    const ts = Date.now()
    const room = target.kind === 'room' ? target.room : null
    const to = target.kind === 'session' && !addressing.toUser ? target.id : addressing.to
    // Every string here is our own id or a validated room/session id, but JSON.stringify keeps
    // the text valid whatever a caller passed.
    const json = '{"id":"' + id + '","type":"' + type + '","from":' + JSON.stringify(from) +
      ',"room":' + JSON.stringify(room) + ',"to":' + JSON.stringify(to) +
      (addressing.toUser ? ',"toUser":true' : '') + ',"data":' + dataJson + ',"ts":' + ts + '}'
    const recipients = await this.call(() => this.store.publish({ id, ts, json, target }, ts))
    return { id, ts, recipients }
  }

  /** The `join` notice of a session that joined `room` (now `size` members), unless the room is too big. */
  async joined (sessionId: string, profileJson: string, room: string, size: number): Promise<void> {
    if (size > this.opts.presenceLimit) return
    await this.publish('join', sessionId, { kind: 'room', room }, profileJson)
  }

  /** The `leave` notice of a session that left `room` (`size` members remain), unless the room was too big. */
  async left (sessionId: string, profileJson: string, room: string, size: number): Promise<void> {
    if (size + 1 > this.opts.presenceLimit) return
    await this.publish('leave', sessionId, { kind: 'room', room }, profileJson)
  }

  /** A session ended or expired: `leave` notices to its rooms (presenceLimit), then `onSessionEnd`. */
  async announceEnd (session: EndedSession, reason: 'expired' | 'ended'): Promise<void> {
    const profileJson = JSON.stringify(session.profile ?? null)
    for (let i = 0; i < session.rooms.length; i++) {
      // A store that does not report sizes: presence as if the room were small.
      await this.left(session.id, profileJson, session.rooms[i], session.sizes?.[i] ?? 0)
    }
    const hook = this.opts.onSessionEnd
    if (hook === undefined) return
    try {
      await hook({ id: session.id, profile: session.profile, user: session.user ?? null, rooms: session.rooms, reason })
    } catch (err) {
      this.log.error({ err, session: session.id }, 'long-poll onSessionEnd hook failed')
    }
  }

  startSweeper (): void {
    this.sweepTimer = setInterval(() => { this.sweep().catch(() => {}) }, this.opts.sweepInterval)
    this.sweepTimer.unref()
  }

  /**
   * Removes expired sessions in batches of SWEEP_BATCH (`store.sweep` also frees expired
   * messages), announcing each; yields to I/O (`setImmediate`) between batches, so a storm of
   * expiring sessions never blocks the event loop for long. One sweep at a time.
   */
  sweep (): Promise<void> {
    this.sweeping ??= this.sweepBatches().finally(() => { this.sweeping = null })
    return this.sweeping
  }

  private async sweepBatches (): Promise<void> {
    while (!this.closed) {
      const ended = await this.call(() => this.store.sweep(Date.now(), SWEEP_BATCH))
      for (const session of ended) await this.announceEnd(session, 'expired')
      if (ended.length < SWEEP_BATCH) return
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }

  /** onClose: the sweeper stops (a running sweep ends after its batch), then the store closes. */
  async close (): Promise<void> {
    this.closed = true
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer)
    this.sweepTimer = undefined
    await this.sweeping?.catch(() => {})
    await this.store.close()
  }
}

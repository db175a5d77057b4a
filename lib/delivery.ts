/**
 * The delivery core: stamps and serializes messages once, hands them to the store, and keeps the
 * polls this instance holds — their wake-ups, hold timeouts, supersede (409), session end (401),
 * store outage (503) and shutdown (503).
 *
 * Hot paths: a publish costs one store call; a wake-up is a map lookup by session id followed by
 * one store read for that session; nothing here iterates over idle sessions.
 */
import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import type {
  EndedSession, MailboxStore, Message, PublishTarget, ReadResult, SessionEndInfo, StoreEvent
} from '../types/index.js'
import {
  BadCursorError, PollSupersededError, ShuttingDownError, StoreUnavailableError, UnknownSessionError
} from './errors.js'
import { idGenerator } from './util.js'

export interface DeliveryOptions {
  maxMessagesPerPoll: number
  sweepInterval: number
  onSessionEnd?: (session: SessionEndInfo) => void | Promise<void>
}

/** Marks an error as "the store failed": the routes answer 503 with retry-after. */
function unavailable (log: FastifyBaseLogger) {
  return (err: unknown): never => {
    log.warn({ err }, 'long-poll store unavailable')
    throw new StoreUnavailableError()
  }
}

/** A poll held by this instance. */
class HeldPoll {
  /** Poll sequence from the store; 0 until `beginPoll` answered. */
  seq = 0
  /** Highest poll sequence announced for this session while `seq` was still unknown. */
  newerSeq = 0
  done = false
  reading = false
  pending = false
  timer: NodeJS.Timeout | undefined = undefined

  constructor (
    readonly core: DeliveryCore,
    readonly sessionId: string,
    public cursor: number | null,
    readonly reply: FastifyReply
  ) {}
}

const kHeld = Symbol('longPollHeld')
type RawWithHeld = FastifyReply['raw'] & { [kHeld]?: HeldPoll }

/** One shared 'close' listener for every held poll (no closure per poll): the client went away. */
function onRawClose (this: RawWithHeld): void {
  const held = this[kHeld]
  if (held !== undefined && !held.done) held.core.release(held)
}

/**
 * `connection: close` on HTTP/1.x only: HTTP/2 forbids connection-specific headers (Node drops
 * them with a warning), and closing the server ends its HTTP/2 sessions anyway.
 */
function closeConnection (reply: FastifyReply): FastifyReply {
  if (reply.request.raw.httpVersionMajor < 2) reply.header('connection', 'close')
  return reply
}

export function pollPayload (result: ReadResult): string {
  return '{"cursor":"' + result.cursor + '","messages":[' + result.messages.join(',') +
    '],"missed":' + result.missed + '}'
}

export class DeliveryCore {
  readonly held = new Map<string, HeldPoll>()
  closing = false
  private readonly nextId = idGenerator()
  private sweepTimer: NodeJS.Timeout | undefined
  private sweeping = false
  private readonly fail: (err: unknown) => never

  constructor (
    readonly store: MailboxStore,
    private readonly opts: DeliveryOptions,
    private readonly log: FastifyBaseLogger,
    /** Called after each sweep (the routes clean their rate-limit windows there). */
    private readonly afterSweep: (now: number) => void = () => {}
  ) {
    this.fail = unavailable(log)
  }

  /** Store calls go through here: any rejection becomes 503 LONGPOLL_STORE_UNAVAILABLE. */
  call<T> (promise: Promise<T>): Promise<T> {
    return promise.then(undefined, this.fail)
  }

  startSweeper (): void {
    this.sweepTimer = setInterval(() => { this.sweep(Date.now()).catch(() => {}) }, this.opts.sweepInterval)
    this.sweepTimer.unref()
  }

  /** Removes expired sessions through the store, announces their `leave`s and calls the hook. */
  async sweep (now: number): Promise<void> {
    if (this.sweeping) return
    this.sweeping = true
    try {
      const ended = await this.call(this.store.sweep(now))
      for (const session of ended) await this.announceEnd(session, 'expired')
      this.afterSweep(now)
    } finally {
      this.sweeping = false
    }
  }

  /** `leave` messages to the rooms of a session that ended, then the `onSessionEnd` hook. */
  async announceEnd (session: EndedSession, reason: 'expired' | 'ended'): Promise<void> {
    for (const room of session.rooms) {
      await this.publish('leave', session.id, { kind: 'room', room }, session.profile)
    }
    if (this.opts.onSessionEnd !== undefined) {
      try {
        await this.opts.onSessionEnd({ ...session, reason })
      } catch (err) {
        this.log.error({ err }, 'long-poll onSessionEnd hook failed')
      }
    }
  }

  /**
   * Stamps id/ts, serializes the message once and stores it. `dataJson` may be given when the
   * caller already serialized `data` (for the size check), so it is never stringified twice.
   */
  async publish (
    type: Message['type'], from: string | null, target: PublishTarget, data: unknown, dataJson?: string
  ): Promise<{ id: string, ts: number, recipients: number }> {
    const id = this.nextId()
    const ts = Date.now()
    const room = target.kind === 'room' ? target.room : null
    const to = target.kind === 'session' ? target.id : null
    // Every string here is our own id or a validated room/session id (no characters to escape),
    // but JSON.stringify keeps it safe whatever the caller passed.
    const json = '{"id":"' + id + '","type":"' + type + '","from":' + JSON.stringify(from) +
      ',"room":' + JSON.stringify(room) + ',"to":' + JSON.stringify(to) +
      ',"data":' + (dataJson ?? JSON.stringify(data)) + ',"ts":' + ts + '}'
    const recipients = await this.call(this.store.publish({ id, ts, json, target }, ts))
    return { id, ts, recipients }
  }

  /** Delivery of a store event to the polls held here. */
  readonly onStoreEvent = (event: StoreEvent): void => {
    switch (event.type) {
      case 'wake':
        if (event.sessions === null) {
          for (const held of this.held.values()) this.wake(held)
        } else {
          for (const id of event.sessions) {
            const held = this.held.get(id)
            if (held !== undefined) this.wake(held)
          }
        }
        break
      case 'poll': {
        const held = this.held.get(event.sessionId)
        if (held === undefined) break
        if (held.seq === 0) {
          if (event.seq > held.newerSeq) held.newerSeq = event.seq
        } else if (held.seq < event.seq) {
          this.finish(held, new PollSupersededError())
        }
        break
      }
      case 'ended': {
        const held = this.held.get(event.sessionId)
        if (held !== undefined) this.finish(held, new UnknownSessionError())
        break
      }
      case 'unavailable':
        for (const held of [...this.held.values()]) this.finish(held, new StoreUnavailableError(), 1)
        break
    }
  }

  /**
   * Answers a poll through `reply`: at once when there is something after the cursor (or
   * `holdMs` is 0), otherwise holds it until a wake-up, the hold time, a newer poll, or shutdown.
   * Callback style on purpose: no promise or closure per held poll on this hot path.
   */
  poll (sessionId: string, cursor: number | null, holdMs: number, reply: FastifyReply): void {
    if (this.closing) {
      closeConnection(reply.header('retry-after', '1')).send(new ShuttingDownError())
      return
    }
    const held = new HeldPoll(this, sessionId, cursor, reply)
    const previous = this.held.get(sessionId)
    if (previous !== undefined) this.finish(previous, new PollSupersededError())
    const raw = reply.raw as RawWithHeld
    // The client may have gone while the request was authenticated: 'close' has fired already.
    // (Over HTTP/2, `reply.raw` is an Http2ServerResponse: its `socket` is undefined once the stream closed.)
    if (raw.destroyed || raw.socket == null || raw.socket.destroyed) return
    // Registered before the first read: a publish during the read marks it pending.
    this.held.set(sessionId, held)
    raw[kHeld] = held
    raw.on('close', onRawClose)
    this.read(held, holdMs).catch((err: Error) => this.finish(held, err))
  }

  /** The client of a held poll went away: forget the poll without answering. */
  release (held: HeldPoll): void {
    this.finish(held, null)
  }

  /** Reads the mailbox (again while wake-ups arrived during the read) and answers when there is something. */
  private async read (held: HeldPoll, holdMs: number | null): Promise<void> {
    held.reading = true
    do {
      held.pending = false
      let result
      try {
        result = await this.store.read(held.sessionId, held.cursor, this.opts.maxMessagesPerPoll, Date.now())
      } catch (err) {
        this.fail(err)
      }
      if (held.done) return
      if (result === null) return this.finish(held, new UnknownSessionError())
      if (result === 'bad-cursor') return this.finish(held, new BadCursorError())
      if (result.messages.length > 0 || result.missed > 0 || holdMs === 0) return this.finish(held, pollPayload(result))
      if (held.seq !== 0 && result.pollSeq > held.seq) return this.finish(held, new PollSupersededError())
      held.cursor = result.cursor
    } while (held.pending)
    held.reading = false
    if (holdMs !== null) await this.hold(held, holdMs)
  }

  /** Nothing to answer yet: tell the store the poll is held, then wait. */
  private async hold (held: HeldPoll, holdMs: number): Promise<void> {
    let seq
    try {
      seq = await this.store.beginPoll(held.sessionId, holdMs, Date.now())
    } catch (err) {
      this.fail(err)
    }
    if (seq === null) return this.finish(held, new UnknownSessionError())
    held.seq = seq
    if (held.done) {
      // Answered (superseded, aborted, shut down) while the store was asked: end the hold.
      this.endPoll(held)
      return
    }
    if (held.newerSeq > seq) return this.finish(held, new PollSupersededError())
    held.timer = setTimeout(() => {
      this.finish(held, '{"cursor":"' + held.cursor + '","messages":[],"missed":0}')
    }, holdMs)
    if (held.pending) this.wake(held)
  }

  private wake (held: HeldPoll): void {
    if (held.done) return
    if (held.reading) {
      held.pending = true
      return
    }
    if (held.seq === 0) {
      // Still between the first read and beginPoll: read again once the hold starts.
      held.pending = true
      return
    }
    this.read(held, null).catch((err: Error) => this.finish(held, err))
  }

  private endPoll (held: HeldPoll): void {
    if (held.seq === 0) return
    this.store.endPoll(held.sessionId, held.seq, Date.now()).catch((err: unknown) => {
      this.log.warn({ err }, 'long-poll store: endPoll failed')
    })
  }

  /**
   * Answers a held poll once: a body (200), an error, or null for a client that went away.
   * `retryAfter` adds the header (503s).
   */
  private finish (held: HeldPoll, outcome: string | Error | null, retryAfter?: number): void {
    if (held.done) return
    held.done = true
    if (held.timer !== undefined) clearTimeout(held.timer)
    if (this.held.get(held.sessionId) === held) this.held.delete(held.sessionId)
    const raw = held.reply.raw as RawWithHeld
    raw[kHeld] = undefined
    raw.removeListener('close', onRawClose)
    this.endPoll(held)
    // null: the client is gone, there is nobody to answer.
    if (outcome === null) return
    if (typeof outcome === 'string') {
      held.reply.type('application/json; charset=utf-8').send(outcome)
      return
    }
    if (retryAfter !== undefined) held.reply.header('retry-after', String(retryAfter))
    held.reply.send(outcome)
  }

  /** preClose: answer every held poll at once with 503 (and `connection: close` on HTTP/1.x). */
  shutdown (): void {
    this.closing = true
    for (const held of [...this.held.values()]) {
      closeConnection(held.reply)
      this.finish(held, new ShuttingDownError(), 1)
    }
  }

  /** onClose: timers and the store. */
  async close (): Promise<void> {
    this.closing = true
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer)
    this.sweepTimer = undefined
    await this.store.close()
  }
}

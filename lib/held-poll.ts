/**
 * Polls: `GET /poll` and `HEAD /poll` on the store v2, and the polls this instance holds.
 *
 * A poll cycle is two store calls: `store.poll()` when the poll arrives (authenticate, read, and
 * begin a hold when there is nothing to answer), then `store.read(…, seq)` when a wake-up
 * concerns it (which ends the hold in the store when it answers) or `endPoll(seq)` when the hold
 * ends otherwise (timeout, client gone, shutdown). Held polls are indexed by the log keys they
 * read (poll-index.ts): a `wake` event re-reads only the polls under its key. `poll` events
 * supersede older held polls (409, also across instances), `ended` answers 401, `unavailable`
 * 503, shutdown 503. Responses being written, 429 POLL_BUSY, responseTimeout: poll-writes.ts.
 *
 * Hot path: the memory store answers synchronously, and then nothing here allocates a promise
 * or a closure per poll (timers and listeners are shared functions that get the poll as an
 * argument or through a symbol on the response). A store that answers with promises costs one
 * `then` per store call.
 */
import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import type { MailboxStore, PollResult, ReadOptions, ReadResult, StoreEvent } from './stores/store.js'
import {
  BadCursorError, PollBusyError, PollSupersededError, ShuttingDownError, StoreUnavailableError,
  UnknownSessionError
} from './errors.js'
import type { ResolvedOptions } from './options.js'
import { PollIndex } from './poll-index.js'
import { emptyPayload, gone, isHttp1, pollPayload, PollWrites, type Raw } from './poll-writes.js'
import { isPromise } from './util.js'

export { pollPayload } from './poll-writes.js'

const kHeld = Symbol('longPollHeld')

/** Events remembered for polls whose store call was in flight when they happened. */
const RING = 64
/** Sessions whose latest poll sequence is remembered (for `poll` events that overtake a result). */
const RECENT_SEQS = 4096

type HeldRaw = Raw & { [kHeld]?: HeldPoll }

/** A poll held by this instance. */
class HeldPoll {
  keys: string[] = []
  rooms: string[] = []
  user: string | null = null
  timer: NodeJS.Timeout | undefined = undefined
  reading = false
  pending = false
  done = false
  /** The wake flush that last woke it (a poll under several woken keys reads once). */
  woken = 0

  constructor (
    readonly polls: HeldPolls,
    readonly sessionId: string,
    readonly tokenHash: string,
    readonly reply: FastifyReply,
    readonly seq: number,
    public cursor: number
  ) {}
}

/** Shared listeners and timer callbacks (no closure per poll). */
function onRawClose (this: HeldRaw): void {
  const held = this[kHeld]
  if (held !== undefined && !held.done) held.polls.release(held)
}

function onHoldTimeout (held: HeldPoll): void {
  held.polls.timedOut(held)
}

type PollOptions = Pick<ResolvedOptions, 'maxMessagesPerPoll' | 'maxPollBytes' | 'responseTimeout'>

export class HeldPolls {
  closing = false
  private readonly bySession = new Map<string, HeldPoll>()
  private readonly index = new PollIndex<HeldPoll>()
  private readonly writes: PollWrites
  private readonly recentSeq = new Map<string, number>()
  /** The last RING wake keys (`all`, `r:…`) and ends (`x:<id>`), by event number modulo RING. */
  private readonly ring: string[] = new Array<string>(RING).fill('')
  private events = 0
  private readonly wakeQueue = new Set<string>()
  private wakeScheduled = false
  private flushes = 0
  private readonly readOptions: ReadOptions
  private readonly headOptions: ReadOptions

  constructor (readonly store: MailboxStore, opts: PollOptions, readonly log: FastifyBaseLogger) {
    this.readOptions = { limit: opts.maxMessagesPerPoll, maxBytes: opts.maxPollBytes }
    this.headOptions = { limit: 0, maxBytes: opts.maxPollBytes }
    this.writes = new PollWrites(opts.responseTimeout, log)
  }

  /** Polls held by this instance. */
  get size (): number {
    return this.bySession.size
  }

  /* Arriving polls -------------------------------------------------------------------------- */

  /** `GET /poll` with a well-formed token and query: answers through `reply`, now or when the hold ends. */
  poll (tokenHash: string, cursor: number | null, holdMs: number, reply: FastifyReply): void {
    if (this.closing) return this.refuseClosing(reply)
    if (this.writes.busy(tokenHash)) {
      reply.header('retry-after', '1').send(new PollBusyError())
      return
    }
    let result
    try {
      result = this.store.poll(tokenHash, cursor, holdMs, this.readOptions, Date.now())
    } catch (err) {
      return this.unavailable(reply, err)
    }
    if (!isPromise(result)) return this.polled(result, tokenHash, holdMs, reply, -1)
    const mark = this.events
    result.then((r) => { this.polled(r, tokenHash, holdMs, reply, mark) }, (err: unknown) => { this.unavailable(reply, err) })
  }

  /** `HEAD /poll`: acknowledges up to the cursor, delivers nothing, is never held, never supersedes. */
  head (tokenHash: string, cursor: number | null, reply: FastifyReply): void {
    if (this.closing) return this.refuseClosing(reply)
    let result
    try {
      result = this.store.poll(tokenHash, cursor, 0, this.headOptions, Date.now())
    } catch (err) {
      return this.unavailable(reply, err)
    }
    if (!isPromise(result)) return this.headed(result, reply)
    result.then((r) => { this.headed(r, reply) }, (err: unknown) => { this.unavailable(reply, err) })
  }

  private headed (result: PollResult, reply: FastifyReply): void {
    if (!result.ok) return this.refused(result.reason, reply)
    reply.code(200).send()
  }

  private refused (reason: 'unknown' | 'bad-cursor', reply: FastifyReply): void {
    if (reason === 'unknown') {
      reply.header('www-authenticate', 'Bearer').send(new UnknownSessionError())
    } else {
      reply.send(new BadCursorError())
    }
  }

  private refuseClosing (reply: FastifyReply): void {
    if (isHttp1(reply)) reply.header('connection', 'close')
    reply.header('retry-after', '1').send(new ShuttingDownError())
  }

  private superseded (reply: FastifyReply): void {
    reply.send(new PollSupersededError())
  }

  private unavailable (reply: FastifyReply, err: unknown): void {
    this.log.warn({ err }, 'long-poll store unavailable')
    reply.header('retry-after', '1').send(new StoreUnavailableError())
  }

  /** The store answered a poll: send it now, or hold it. `mark`: the event count when the call began (-1: synchronous). */
  private polled (result: PollResult, tokenHash: string, holdMs: number, reply: FastifyReply, mark: number): void {
    if (!result.ok) return this.refused(result.reason, reply)
    const read = result.read
    if (result.seq === 0) return this.writes.send(reply, tokenHash, pollPayload(read))
    const id = result.session.id
    const raw = reply.raw as HeldRaw
    // The client may have gone during the store call ('close' has fired already), or the server began closing.
    if (this.closing || gone(raw)) {
      this.endPoll(id, result.seq)
      if (!gone(raw)) this.refuseClosing(reply)
      return
    }
    const previous = this.bySession.get(id)
    if (previous !== undefined) {
      if (previous.seq > result.seq) return this.superseded(reply)
      this.finish(previous, new PollSupersededError())
    }
    // A newer poll of this session (on another instance) began while our result was on its way.
    if ((this.recentSeq.get(id) ?? 0) > result.seq) return this.superseded(reply)

    const held = new HeldPoll(this, id, tokenHash, reply, result.seq, read.cursor)
    this.index.add(held, read.rooms, read.user)
    this.bySession.set(id, held)
    raw[kHeld] = held
    raw.on('close', onRawClose)
    held.timer = setTimeout(onHoldTimeout, holdMs, held)
    if (mark >= 0 && mark !== this.events) this.catchUp(held, mark)
  }

  /** Events that happened while the poll's store call was in flight: an end answers 401, a wake of one of its logs reads again. */
  private catchUp (held: HeldPoll, mark: number): void {
    if (this.events - mark > RING) return this.wake(held)
    const ended = 'x:' + held.sessionId
    let wake = false
    for (let e = mark; e < this.events; e++) {
      const key = this.ring[e % RING]
      if (key === ended) return this.finishUnknown(held)
      if (!wake && held.keys.includes(key)) wake = true
    }
    if (wake) this.wake(held)
  }

  /* Store events ---------------------------------------------------------------------------- */

  readonly onStoreEvent = (event: StoreEvent): void => {
    switch (event.type) {
      case 'wake':
        this.record(event.log)
        this.wakeQueue.add(event.log)
        if (!this.wakeScheduled) {
          this.wakeScheduled = true
          queueMicrotask(this.flushWakes)
        }
        break
      case 'poll': {
        const { sessionId, seq } = event
        this.recentSeq.delete(sessionId)
        this.recentSeq.set(sessionId, seq)
        if (this.recentSeq.size > RECENT_SEQS) this.recentSeq.delete(this.recentSeq.keys().next().value as string)
        const held = this.bySession.get(sessionId)
        if (held !== undefined && held.seq < seq) this.finish(held, new PollSupersededError())
        break
      }
      case 'ended': {
        this.record('x:' + event.sessionId)
        this.recentSeq.delete(event.sessionId)
        const held = this.bySession.get(event.sessionId)
        if (held !== undefined) this.finishUnknown(held)
        break
      }
      case 'unavailable':
        for (const held of [...this.bySession.values()]) this.finish(held, new StoreUnavailableError(), 1)
        break
    }
  }

  private record (key: string): void {
    this.ring[this.events % RING] = key
    this.events++
  }

  /**
   * Wake events are handled together once the current job is done: the store is never
   * re-entered from inside its own call, and a poll woken through several of its logs at once
   * (a registration's join notices) reads once.
   */
  private readonly flushWakes = (): void => {
    this.wakeScheduled = false
    const flush = ++this.flushes
    for (const key of this.wakeQueue) {
      const polls = this.index.get(key)
      if (polls === undefined) continue
      for (const held of polls) {
        if (held.woken === flush) continue
        held.woken = flush
        this.wake(held)
      }
    }
    this.wakeQueue.clear()
  }

  /* Held polls ------------------------------------------------------------------------------ */

  private wake (held: HeldPoll): void {
    if (held.done) return
    if (held.reading) {
      held.pending = true
      return
    }
    this.read(held)
  }

  private read (held: HeldPoll): void {
    held.reading = true
    held.pending = false
    let result
    try {
      result = this.store.read(held.sessionId, held.cursor, this.readOptions, Date.now(), held.seq)
    } catch (err) {
      return this.readFailed(held, err)
    }
    if (!isPromise(result)) return this.afterRead(held, result)
    result.then((r) => { this.afterRead(held, r) }, (err: unknown) => { this.readFailed(held, err) })
  }

  private afterRead (held: HeldPoll, result: ReadResult | 'bad-cursor' | null): void {
    held.reading = false
    if (held.done) return
    if (result === null) return this.finishUnknown(held)
    if (result === 'bad-cursor') {
      this.finish(held, new BadCursorError())
      return this.endPoll(held.sessionId, held.seq)
    }
    // Something to answer: the store ended the hold in the same call.
    if (result.messages.length > 0 || result.missed > 0) return this.finish(held, pollPayload(result))
    if (result.pollSeq > held.seq) return this.finish(held, new PollSupersededError())
    held.cursor = result.cursor
    this.index.update(held, result.rooms, result.user)
    if (held.pending) this.read(held)
  }

  private readFailed (held: HeldPoll, err: unknown): void {
    held.reading = false
    this.log.warn({ err }, 'long-poll store unavailable')
    this.finish(held, new StoreUnavailableError(), 1)
  }

  /** The hold time passed: answer with no messages. */
  timedOut (held: HeldPoll): void {
    held.timer = undefined
    this.finish(held, emptyPayload(held.cursor))
    this.endPoll(held.sessionId, held.seq)
  }

  /** The client of a held poll went away: forget the poll without answering. */
  release (held: HeldPoll): void {
    this.finish(held, null)
    this.endPoll(held.sessionId, held.seq)
  }

  private finishUnknown (held: HeldPoll): void {
    if (!held.done) held.reply.header('www-authenticate', 'Bearer')
    this.finish(held, new UnknownSessionError())
  }

  /** Answers a held poll once: a 200 body, an error (with `retry-after` when given), or null for a client that went away. */
  private finish (held: HeldPoll, outcome: string | Error | null, retryAfter = 0): void {
    if (held.done) return
    held.done = true
    if (held.timer !== undefined) clearTimeout(held.timer)
    this.index.remove(held)
    if (this.bySession.get(held.sessionId) === held) this.bySession.delete(held.sessionId)
    const raw = held.reply.raw as HeldRaw
    raw[kHeld] = undefined
    raw.removeListener('close', onRawClose)
    if (outcome === null) return
    if (typeof outcome === 'string') return this.writes.send(held.reply, held.tokenHash, outcome)
    if (retryAfter > 0) held.reply.header('retry-after', String(retryAfter))
    held.reply.send(outcome)
  }

  private endPoll (sessionId: string, seq: number): void {
    try {
      const done = this.store.endPoll(sessionId, seq, Date.now())
      if (isPromise(done)) done.then(undefined, this.endPollFailed)
    } catch (err) {
      this.endPollFailed(err)
    }
  }

  private readonly endPollFailed = (err: unknown): void => {
    this.log.warn({ err }, 'long-poll store: endPoll failed')
  }

  /* Shutdown -------------------------------------------------------------------------------- */

  /** preClose: every held poll is answered at once with 503 (and `connection: close` on HTTP/1). */
  shutdown (): void {
    this.closing = true
    for (const held of [...this.bySession.values()]) {
      if (isHttp1(held.reply)) held.reply.header('connection', 'close')
      this.finish(held, new ShuttingDownError(), 1)
      this.endPoll(held.sessionId, held.seq)
    }
  }
}

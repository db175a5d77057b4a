/**
 * Property-based tests of the mailbox store (fast-check), through the `MailboxStore` interface
 * only: arbitrary interleavings of publishes (to all, to a room, to one session), reads with the
 * newest cursor, with a cursor whose response was lost, without a cursor, with an older or a
 * too-new cursor, time passing (messageTtl, sessionTtl), overflow of small mailboxes, held polls,
 * room changes, session ends, sweeps and new registrations.
 *
 * Unlike the reference model of the store contract (test/store-contract/model.ts), this test
 * does not predict each answer: it checks the delivery guarantee of PROTOCOL.md against what the
 * store actually returned, so any store that keeps the guarantee passes. For each session:
 * - cursors are the session's sequence numbers (types/index.ts), so the n-th message published to
 *   it has sequence n: every read returns a contiguous run of those messages, ending at the
 *   returned cursor, in publishing order;
 * - nothing at or before an acknowledged cursor is ever returned again (a lost response is
 *   repeated only for unacknowledged messages), and a returned cursor is never behind the request;
 * - a message is skipped over only when it may be gone (expired or overflowed), and every such
 *   message that was never returned is counted in `missed` (no silent loss); `missed` never counts
 *   more messages than could have been dropped undelivered (never both delivered and missed);
 * - after a final drain, delivered + missed = published, exactly, and nothing stays queued.
 * Sessions, rooms, sweeps and the counters of `stats()` are checked against a small model too.
 *
 * Every clock value is a multiple of 7 ms while no TTL is, so no check depends on which side of a
 * TTL boundary a store puts the exact millisecond.
 *
 * Runs against the v1 MemoryStore (lib/stores/memory.ts), the last store of the v1 interface;
 * the Redis store implements the store interface v2, whose contract (test/store-contract-v2/,
 * run against it by test/store-redis.test.ts) has its own model-based test. PROPERTY_RUNS and
 * PROPERTY_SEED override the run count and seed.
 */
import { AssertionError } from 'node:assert'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { MemoryStore } from '../lib/stores/memory.js'
import type { EndedSession, MailboxStore, PublishTarget, StoreConfig } from '../types/index.js'
import { sha256 } from './helpers/store.js'

type Tap = Test | typeof t

export type StoreFactory = () => Promise<{ store: MailboxStore, cleanup: () => Promise<void> }>

const STEP = 7
const CONFIG: StoreConfig = {
  messageTtl: 3000,
  sessionTtl: 10_000,
  maxMailboxMessages: 3,
  maxSessions: 5,
  maxRoomsPerSession: 2
}
const ROOMS = ['a', 'b', 'c']
/** Longer than any run's fake time span: a hold ends only through endPoll (or endSession). */
const HOLD_MS = 100_000_000
const SEED = Number(process.env.PROPERTY_SEED ?? 0x5EED)
const RUNS = Number(process.env.PROPERTY_RUNS ?? 0)

/* Operations ---------------------------------------------------------------------------------- */

type ReadMode = 'ack' | 'lost' | 'null' | 'stale' | 'ahead'

export type Op =
  | { op: 'publish', to: 'all' }
  | { op: 'publish', to: 'room', room: number }
  | { op: 'publish', to: 'session', who: number }
  | { op: 'read', who: number, mode: ReadMode, limit: number, pick: number }
  | { op: 'wait', steps: number }
  | { op: 'hold', who: number }
  | { op: 'release', who: number, stale: boolean }
  | { op: 'join', who: number, room: number }
  | { op: 'leave', who: number, room: number }
  | { op: 'end', who: number }
  | { op: 'sweep' }
  | { op: 'register', rooms: number[] }
  | { op: 'touch', who: number }

const who = fc.nat({ max: 7 })
const room = fc.nat({ max: ROOMS.length - 1 })

export const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.oneof(
      fc.constant({ op: 'publish' as const, to: 'all' as const }),
      fc.record({ op: fc.constant('publish' as const), to: fc.constant('room' as const), room }),
      fc.record({ op: fc.constant('publish' as const), to: fc.constant('session' as const), who })
    )
  },
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('read' as const),
      who,
      mode: fc.constantFrom<ReadMode>('ack', 'ack', 'ack', 'lost', 'lost', 'null', 'stale', 'ahead'),
      limit: fc.oneof(fc.nat({ max: 4 }), fc.constant(100)),
      pick: fc.nat({ max: 1000 })
    })
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('wait' as const), steps: fc.nat({ max: 650 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('hold' as const), who }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('release' as const), who, stale: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('join' as const), who, room }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('leave' as const), who, room }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('touch' as const), who }) },
  { weight: 1, arbitrary: fc.constant({ op: 'sweep' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('register' as const), rooms: fc.uniqueArray(room, { maxLength: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('end' as const), who }) }
)

/* The model: only what a client and an observer of the interface know ---------------------- */

interface ModelSession {
  id: string
  tokenHash: string
  state: 'present' | 'ended' | 'swept'
  rooms: Set<string>
  lastSeen: number
  holding: boolean
  pollSeq: number
  /** Poll sequences this session's holds got, oldest first (for stale endPoll calls). */
  seqs: number[]
  /** Messages published to this session: the one at index i has sequence i + 1. */
  pub: Array<{ id: string, ts: number }>
  /** Sequences returned by some read (whether or not the client got the response). */
  delivered: Set<number>
  /** Highest cursor the store returned. */
  issued: number
  /** Highest position acknowledged by a request. */
  acked: number
  /** The cursor the client sends next ("ack" and "lost" reads). */
  clientCursor: number
  missedTotal: number
  /** Never-returned sequences that a read skipped over (gone). */
  skipped: Set<number>
}

function fail (message: string): never {
  throw new AssertionError({ message })
}

function check (ok: boolean, message: string): void {
  if (!ok) fail(message)
}

function sameSet (a: Iterable<string>, b: Iterable<string>): boolean {
  const x = [...a].sort()
  const y = [...b].sort()
  return x.length === y.length && x.every((v, i) => v === y[i])
}

export interface RunSummary {
  ops: number
  published: number
  reads: number
  missed: number
  skippedOver: number
  sweptSessions: number
}

/** Plays `plan` against `store` (already init'ed with CONFIG), checking the guarantee at every step. */
export async function runPlan (store: MailboxStore, plan: Op[], tag: string, summary: RunSummary): Promise<void> {
  let now = Math.ceil(Date.now() / STEP) * STEP
  const sessions: ModelSession[] = []
  let counter = 0
  let delivered = 0
  const cfg = CONFIG

  const live = (s: ModelSession): boolean => s.state === 'present' && (s.holding || s.lastSeen + cfg.sessionTtl > now)
  const present = (): ModelSession[] => sessions.filter((s) => s.state === 'present')
  const pick = (i: number): ModelSession => sessions[i % sessions.length]
  /** May this message of `s` (sequence p) be gone by now: expired, or at least max newer ones after it. */
  const droppable = (s: ModelSession, p: number): boolean =>
    s.pub[p - 1].ts + cfg.messageTtl <= now || s.pub.length - p >= cfg.maxMailboxMessages

  const create = async (rooms: string[], where: string): Promise<void> => {
    const id = `${tag}-s${sessions.length}`
    const tokenHash = sha256(id + ':token')
    const expected = present().length < cfg.maxSessions
    const ok = await store.createSession({ id, tokenHash, profile: null, rooms }, now)
    check(ok === expected, `${where}: createSession returned ${ok}, expected ${expected} (${present().length} sessions, max ${cfg.maxSessions})`)
    if (!ok) return
    sessions.push({
      id,
      tokenHash,
      state: 'present',
      rooms: new Set(rooms),
      lastSeen: now,
      holding: false,
      pollSeq: 0,
      seqs: [],
      pub: [],
      delivered: new Set(),
      issued: 0,
      acked: 0,
      clientCursor: 0,
      missedTotal: 0,
      skipped: new Set()
    })
  }

  const checkEnded = (got: EndedSession, s: ModelSession, where: string): void => {
    check(got.id === s.id, `${where}: ended id ${got.id}, expected ${s.id}`)
    check(sameSet(got.rooms, s.rooms), `${where}: ended session's rooms ${JSON.stringify(got.rooms)}, expected ${JSON.stringify([...s.rooms])}`)
  }

  const sweep = async (where: string): Promise<void> => {
    const expected = present().filter((s) => !live(s))
    const got = await store.sweep(now)
    check(sameSet(got.map((e) => e.id), expected.map((s) => s.id)),
      `${where}: sweep(now) ended ${JSON.stringify(got.map((e) => e.id))}, expected ${JSON.stringify(expected.map((s) => s.id))}`)
    for (const e of got) {
      const s = expected.find((x) => x.id === e.id) as ModelSession
      checkEnded(e, s, where)
      s.state = 'swept'
      summary.sweptSessions++
    }
    const st = await store.stats()
    check(st.sessions === present().length, `${where}: stats.sessions ${st.sessions} after a sweep, expected ${present().length}`)
  }

  /** What the plugin does first on every authenticated route. True when the session is live. */
  const authenticate = async (s: ModelSession, where: string): Promise<boolean> => {
    const expected = live(s)
    const info = await store.authenticate(s.tokenHash, now)
    if (!expected) {
      check(info === null, `${where}: authenticate of a ${s.state === 'present' ? 'expired' : s.state} session returned ${JSON.stringify(info)}`)
      return false
    }
    check(info !== null, `${where}: authenticate of a live session returned null`)
    if (info === null) return false
    check(info.id === s.id, `${where}: authenticate returned id ${info.id}, expected ${s.id}`)
    check(sameSet(info.rooms, s.rooms), `${where}: authenticate rooms ${JSON.stringify(info.rooms)}, expected ${JSON.stringify([...s.rooms])}`)
    s.lastSeen = now
    return true
  }

  const read = async (s: ModelSession, mode: ReadMode, limit: number, pickN: number, where: string): Promise<void> => {
    let sent: number | null
    if (mode === 'null') sent = null
    else if (mode === 'ahead') sent = s.issued + 1 + (pickN % 3)
    else if (mode === 'stale') sent = pickN % (s.acked + 1)
    else sent = s.clientCursor
    const r = await store.read(s.id, sent, limit, now)
    summary.reads++
    if (mode === 'ahead') {
      check(r === 'bad-cursor', `${where}: read with cursor ${String(sent)} ahead of issued ${s.issued} returned ${JSON.stringify(r)}, expected 'bad-cursor'`)
      return
    }
    if (r === null || r === 'bad-cursor') return fail(`${where}: read(${String(sent)}) of a live session returned ${String(r)}`)
    const after = sent ?? s.issued
    // Everything up to max(acked, after) is acknowledged: it may never be returned (again).
    const ackedBefore = Math.max(s.acked, after)
    const n = s.pub.length
    const k = r.messages.length
    const c = r.cursor
    const ids = r.messages.map((m) => (JSON.parse(m) as { id: string }).id)
    check(Number.isSafeInteger(c), `${where}: cursor ${String(c)} is not an integer`)
    check(Number.isSafeInteger(r.missed) && r.missed >= 0, `${where}: missed ${r.missed}`)
    check(k <= limit, `${where}: ${k} messages returned for limit ${limit}`)
    let first: number // first sequence after the acknowledged ones that is still there (or n + 1)
    if (k === 0) {
      check(c === after, `${where}: no messages, cursor ${c}, expected the request's cursor ${after}`)
      first = limit > 0 ? n + 1 : ackedBefore + 1
    } else {
      const a = c - k + 1
      check(c <= n, `${where}: cursor ${c} beyond the ${n} messages published to the session`)
      check(a > ackedBefore, `${where}: returned sequences ${a}..${c}, but everything up to ${ackedBefore} was acknowledged (duplicate after acknowledgement)`)
      const expected = s.pub.slice(a - 1, c).map((m) => m.id)
      check(ids.every((id, i) => id === expected[i]),
        `${where}: returned ${JSON.stringify(ids)} at sequences ${a}..${c}, but those are ${JSON.stringify(expected)} (order or numbering broken)`)
      if (k < limit) check(c === n, `${where}: ${k} < limit ${limit} messages returned, but ${n - c} newer ones were left behind`)
      first = a
    }
    // Skipped over: acknowledged-position < p < first. Each must be gone legitimately.
    for (let p = ackedBefore + 1; p < first; p++) {
      check(droppable(s, p), `${where}: sequence ${p} (${s.pub[p - 1].id}, ts ${s.pub[p - 1].ts}, now ${now}) was skipped, but it neither expired nor overflowed`)
      if (!s.delivered.has(p) && !s.skipped.has(p)) {
        s.skipped.add(p)
        summary.skippedOver++
      }
    }
    for (let p = c - k + 1; p <= c; p++) {
      if (k > 0 && !s.delivered.has(p)) {
        s.delivered.add(p)
        delivered++
      }
    }
    s.missedTotal += r.missed
    summary.missed += r.missed
    check(s.missedTotal >= s.skipped.size,
      `${where}: ${s.skipped.size} never-delivered messages were skipped over, but only ${s.missedTotal} were reported missed (silent loss)`)
    let couldBeMissed = 0
    for (let p = 1; p <= n; p++) if (!s.delivered.has(p) && droppable(s, p)) couldBeMissed++
    check(s.missedTotal <= couldBeMissed,
      `${where}: ${s.missedTotal} reported missed, but only ${couldBeMissed} messages could have been dropped undelivered (delivered and missed?)`)
    s.issued = Math.max(s.issued, c)
    s.acked = ackedBefore
    if (mode !== 'lost') s.clientCursor = c
  }

  const checkStats = async (where: string): Promise<void> => {
    const st = await store.stats()
    const reported = sessions.reduce((sum, s) => sum + s.missedTotal, 0)
    check(st.delivered === delivered, `${where}: stats.delivered ${st.delivered}, expected ${delivered}`)
    check(st.queued >= 0 && st.queued <= cfg.maxMailboxMessages * st.sessions,
      `${where}: stats.queued ${st.queued} beyond maxMailboxMessages x sessions (${cfg.maxMailboxMessages} x ${st.sessions})`)
    check(st.sessions >= present().filter(live).length && st.sessions <= present().length,
      `${where}: stats.sessions ${st.sessions}, expected between ${present().filter(live).length} and ${present().length}`)
    check(st.dropped >= reported, `${where}: stats.dropped ${st.dropped} below the ${reported} messages reported missed`)
  }

  await create(['a'], 'setup')
  await create(['a', 'b'], 'setup')
  await create([], 'setup')

  for (const [step, o] of plan.entries()) {
    const where = `step ${step} ${JSON.stringify(o)}`
    summary.ops++
    switch (o.op) {
      case 'wait':
        now += o.steps * STEP
        break
      case 'publish': {
        const id = `${tag}-m${++counter}`
        let target: PublishTarget
        let recipients: ModelSession[]
        if (o.to === 'all') {
          target = { kind: 'all' }
          recipients = sessions.filter(live)
        } else if (o.to === 'room') {
          const name = ROOMS[o.room]
          target = { kind: 'room', room: name }
          recipients = sessions.filter((s) => live(s) && s.rooms.has(name))
        } else {
          const s = pick(o.who)
          target = { kind: 'session', id: s.id }
          recipients = live(s) ? [s] : []
        }
        const json = JSON.stringify({ id, type: 'message', from: null, room: null, to: null, data: counter, ts: now })
        const count = await store.publish({ id, ts: now, json, target }, now)
        check(count === recipients.length, `${where}: publish returned ${count} recipients, expected ${recipients.length}`)
        for (const s of recipients) s.pub.push({ id, ts: now })
        summary.published++
        break
      }
      case 'read': {
        const s = pick(o.who)
        if (await authenticate(s, where)) await read(s, o.mode, o.limit, o.pick, where)
        break
      }
      case 'hold': {
        const s = pick(o.who)
        if (!await authenticate(s, where)) break
        const seq = await store.beginPoll(s.id, HOLD_MS, now)
        check(typeof seq === 'number' && seq > s.pollSeq, `${where}: beginPoll returned ${String(seq)}, expected more than ${s.pollSeq}`)
        s.pollSeq = seq as number
        s.seqs.push(s.pollSeq)
        s.holding = true
        break
      }
      case 'release': {
        // As the plugin does: each begun poll ends once; an older one ending must not cut a newer hold.
        const s = pick(o.who)
        if (s.state !== 'present' || !s.holding) break
        if (o.stale) {
          if (s.seqs.length < 2) break
          await store.endPoll(s.id, s.seqs[0], now)
        } else {
          await store.endPoll(s.id, s.pollSeq, now)
          s.holding = false
          s.lastSeen = Math.max(s.lastSeen, now)
        }
        break
      }
      case 'join': {
        const s = pick(o.who)
        if (!await authenticate(s, where)) break
        const name = ROOMS[o.room]
        const expected = s.rooms.has(name) ? 'already' : s.rooms.size >= cfg.maxRoomsPerSession ? 'too-many' : 'joined'
        const got = await store.join(s.id, name)
        check(got === expected, `${where}: join returned ${got}, expected ${expected}`)
        if (got === 'joined') s.rooms.add(name)
        break
      }
      case 'leave': {
        const s = pick(o.who)
        if (!await authenticate(s, where)) break
        const name = ROOMS[o.room]
        const got = await store.leave(s.id, name)
        check(got === s.rooms.has(name), `${where}: leave returned ${got}, membership was ${s.rooms.has(name)}`)
        s.rooms.delete(name)
        break
      }
      case 'touch':
        await authenticate(pick(o.who), where)
        break
      case 'end': {
        const s = pick(o.who)
        if (!await authenticate(s, where)) break
        const got = await store.endSession(s.id)
        check(got !== null, `${where}: endSession of a live session returned null`)
        checkEnded(got as EndedSession, s, where)
        s.state = 'ended'
        s.holding = false
        check(await store.read(s.id, s.clientCursor, 10, now) === null, `${where}: read after endSession is not null`)
        check(await store.authenticate(s.tokenHash, now) === null, `${where}: authenticate after endSession is not null`)
        break
      }
      case 'sweep':
        await sweep(where)
        break
      case 'register':
        await sweep(where)
        await create(o.rooms.map((r) => ROOMS[r]), where)
        break
    }
    await checkStats(where)
  }

  // Drain: the client of every remaining session reads everything with its cursor, then acknowledges it.
  await sweep('drain')
  for (const s of present()) {
    const where = `drain ${s.id}`
    check(await authenticate(s, where), `${where}: a session left by sweep is live`)
    await read(s, 'ack', 1_000_000, 0, where)
    const lost = s.pub.length - s.delivered.size
    check(s.missedTotal === lost,
      `${where}: ${s.pub.length} published, ${s.delivered.size} delivered, so ${lost} must be reported missed, but ${s.missedTotal} were`)
    const r = await store.read(s.id, s.clientCursor, 1_000_000, now)
    check(r !== null && r !== 'bad-cursor' && r.messages.length === 0 && r.missed === 0,
      `${where}: after the drain, a read returned ${JSON.stringify(r)}`)
  }
  await checkStats('drain')
  const st = await store.stats()
  check(st.queued === 0, `drain: every remaining mailbox is acknowledged, but stats.queued is ${st.queued}`)
}

/** Runs the property against one store. */
function suite (parent: Tap, name: string, factory: StoreFactory, runs: number): void {
  parent.test(`delivery guarantee under random operation sequences (${name})`, async (t) => {
    const summary: RunSummary = { ops: 0, published: 0, reads: 0, missed: 0, skippedOver: 0, sweptSessions: 0 }
    let run = 0
    const tagBase = randomBytes(3).toString('hex')
    await fc.assert(
      fc.asyncProperty(fc.array(opArbitrary, { minLength: 1, maxLength: 80, size: 'max' }), async (plan) => {
        const { store, cleanup } = await factory()
        try {
          await store.init(CONFIG, () => {})
          await runPlan(store, plan, `${tagBase}r${run++}`, summary)
        } finally {
          await store.close()
          await cleanup()
        }
      }),
      { numRuns: runs, seed: SEED }
    )
    // The generator must actually reach the interesting cases, or the property proves little.
    t.ok(summary.missed > 0, `messages were reported missed (${summary.missed})`)
    t.ok(summary.skippedOver > 0, `reads skipped over dropped messages (${summary.skippedOver})`)
    t.ok(summary.sweptSessions > 0, `sessions expired and were swept (${summary.sweptSessions})`)
    t.pass(`${runs} sequences: ${summary.ops} operations, ${summary.published} publishes, ${summary.reads} reads, ${summary.missed} missed`)
  })
}

suite(t, 'memory', async () => ({ store: new MemoryStore(), cleanup: async () => {} }), RUNS > 0 ? RUNS : 300)

/**
 * Store contract v2, model-based: random operation sequences (fast-check, fixed seed) played on
 * the store and on the reference model (model-oracle.ts), compared at every step: publishes to
 * everyone, rooms, sessions and users; polls and re-reads with the newest cursor, a resent one
 * (lost response), none, an older one, one ahead of anything issued; HEAD; byte caps; holds and
 * their ends; joins (with history) and leaves; session ends, user ends, sweeps in batches and
 * registrations; member lists, histories and user sessions; and time passing every TTL.
 *
 * Every clock value is a multiple of 7 ms while no TTL is, so no check depends on which side of
 * a TTL boundary a store puts the exact millisecond.
 */
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import type { Test } from 'tap'
import type { LogTarget, MailboxStore, StoreConfig } from '../../lib/stores/store.js'
import { hash, sorted, type ContractStoreFactory } from './helpers.js'
import { Model, MSession, check, fail } from './model-oracle.js'

const STEP = 7
/** Room history keeps fewer messages than a mailbox (2), or more (5). */
const configOf = (historyMax: number): StoreConfig => ({
  messageTtl: 3000,
  sessionTtl: 10_000,
  maxMailboxMessages: 3,
  maxSessions: 5,
  maxRoomsPerSession: 2,
  maxSessionsPerUser: 2,
  history: { maxMessages: historyMax, maxAge: 5000 }
})
const ROOMS = ['a', 'b', 'c']
const USERS = ['u0', 'u1']
/** Longer than any run's fake time span: a hold ends only through endPoll, a read or an end. */
const HOLD_MS = 100_000_000

type Mode = 'ack' | 'lost' | 'null' | 'stale' | 'ahead'
type Bytes = 'all' | 'one' | 'two'

type Op =
  | { op: 'publish', to: 'all' | 'room' | 'session' | 'user', n: number }
  | { op: 'poll', who: number, mode: Mode, limit: number, bytes: Bytes, hold: boolean, pick: number }
  | { op: 'read', who: number, mode: Mode, limit: number, bytes: Bytes, withSeq: boolean, pick: number }
  | { op: 'head', who: number, mode: Mode, pick: number }
  | { op: 'wait', steps: number }
  | { op: 'release', who: number, stale: boolean }
  | { op: 'join', who: number, room: number, history: number }
  | { op: 'leave', who: number, room: number }
  | { op: 'touch', who: number }
  | { op: 'end', who: number }
  | { op: 'endUser', user: number }
  | { op: 'sweep', limit: number }
  | { op: 'register', rooms: number[], user: number }
  | { op: 'members', room: number, limit: number }
  | { op: 'history', room: number, limit: number }
  | { op: 'userSessions', user: number }
  | { op: 'lookup', who: number }

const who = fc.nat({ max: 7 })
const room = fc.nat({ max: ROOMS.length - 1 })
const mode = fc.constantFrom<Mode>('ack', 'ack', 'ack', 'lost', 'lost', 'null', 'stale', 'ahead')
const bytes = fc.constantFrom<Bytes>('all', 'all', 'one', 'two')
const limit = fc.oneof(fc.integer({ min: 1, max: 4 }), fc.constant(100))

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { weight: 7, arbitrary: fc.record({ op: fc.constant('publish' as const), to: fc.constantFrom('all' as const, 'room' as const, 'session' as const, 'user' as const), n: fc.nat({ max: 7 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('poll' as const), who, mode, limit, bytes, hold: fc.boolean(), pick: fc.nat({ max: 1000 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('read' as const), who, mode, limit, bytes, withSeq: fc.boolean(), pick: fc.nat({ max: 1000 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('head' as const), who, mode, pick: fc.nat({ max: 1000 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('wait' as const), steps: fc.nat({ max: 650 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('release' as const), who, stale: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('join' as const), who, room, history: fc.constantFrom(0, 0, 2, 50) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('leave' as const), who, room }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('touch' as const), who }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('end' as const), who }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('endUser' as const), user: fc.nat({ max: USERS.length - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('sweep' as const), limit: fc.constantFrom(1, 2, 100) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('register' as const), rooms: fc.uniqueArray(room, { maxLength: 2 }), user: fc.nat({ max: USERS.length }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('members' as const), room: fc.nat({ max: ROOMS.length }), limit: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('history' as const), room, limit: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('userSessions' as const), user: fc.nat({ max: USERS.length - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('lookup' as const), who }) }
)

export interface ModelSummary { ops: number, publishes: number, reads: number, missed: number, swept: number, leftUnread: number }

/** Plays `plan` on `store` (init'ed with `config`) and on the model, throwing at the first difference. */
async function runPlan (store: MailboxStore, config: StoreConfig, plan: Op[], tag: string, summary: ModelSummary): Promise<void> {
  const model = new Model(config, Math.ceil(Date.now() / STEP) * STEP)
  let counter = 0
  const pick = (i: number): MSession => model.sessions[i % model.sessions.length]
  const maxBytesOf = (b: Bytes): number => b === 'all' ? 1 << 30 : b === 'one' ? 1 : 210

  const register = async (rooms: string[], user: string | null, where: string): Promise<void> => {
    const id = `${tag}-s${model.sessions.length}`
    const s = new MSession(id, hash(id + ':token'), user, model.now)
    const got = await store.createSession({ id, tokenHash: s.tokenHash, profile: null, user, context: null, rooms }, model.now)
    const userNow = user === null ? [] : model.userSessions(user)
    const cap = config.maxSessionsPerUser
    // Whether a session that expired but is not swept yet takes a place of its user is the store's choice.
    const mustBeUserFull = user !== null && userNow.filter((x) => model.live(x)).length >= cap
    const mayBeUserFull = user !== null && userNow.length >= cap
    if (mustBeUserFull || (mayBeUserFull && !got.ok && got.reason === 'user-full')) {
      check(!got.ok && got.reason === 'user-full', `${where}: createSession returned ${JSON.stringify(got)}, expected user-full`)
      return
    }
    if (model.present().length >= config.maxSessions) {
      check(!got.ok && got.reason === 'full', `${where}: createSession returned ${JSON.stringify(got)}, expected full`)
      return
    }
    check(got.ok, `${where}: createSession returned ${JSON.stringify(got)}, expected ok`)
    model.sessions.push(s)
    for (const r of rooms) model.join(s, r)
    const sizes = rooms.map((r) => model.members(r).length)
    check(got.ok && JSON.stringify(got.sizes) === JSON.stringify(sizes), `${where}: sizes ${JSON.stringify(got)}, expected ${JSON.stringify(sizes)}`)
  }

  /** What the core does first on every authenticated route. True when the session is live. */
  const authenticate = async (s: MSession, where: string): Promise<boolean> => {
    const expected = model.live(s)
    const got = await store.authenticate(s.tokenHash, model.now)
    if (!expected) {
      check(!got.ok, `${where}: authenticate of a ${s.state === 'present' ? 'expired' : s.state} session returned ${JSON.stringify(got)}`)
      return false
    }
    check(got.ok, `${where}: authenticate of a live session returned ${JSON.stringify(got)}`)
    if (!got.ok) return false
    check(got.session.id === s.id && got.session.user === s.user && got.session.lastSeen === model.now,
      `${where}: authenticate returned ${JSON.stringify(got.session)}`)
    check(JSON.stringify(sorted(got.session.rooms)) === JSON.stringify(sorted(s.rooms)),
      `${where}: authenticate rooms ${JSON.stringify(got.session.rooms)}, expected ${JSON.stringify([...s.rooms])}`)
    s.lastSeen = model.now
    return true
  }

  const cursorFor = (s: MSession, m: Mode, pickN: number): number | null => {
    if (m === 'null') return null
    if (m === 'ahead') return s.issuedCursor + 1 + (pickN % 3)
    if (m === 'stale') {
      const known = [...s.cursorIdx.keys()]
      return known[pickN % known.length]
    }
    return s.clientCursor
  }

  /** Compares a read result with the model's; returns whether it was answered (messages or missed). */
  const compare = (s: MSession, r: { messages: string[], cursor: number, missed: number, rooms: string[], user: string | null },
    cursor: number | null, m: Mode, lim: number, maxBytes: number, where: string): boolean => {
    const expected = model.read(s, cursor, lim, maxBytes)
    const data = r.messages.map((j) => (JSON.parse(j) as { data: number }).data)
    check(JSON.stringify([data, r.missed]) === JSON.stringify([expected.data, expected.missed]),
      `${where}: read returned ${JSON.stringify({ data, missed: r.missed })}, expected ${JSON.stringify({ data: expected.data, missed: expected.missed })}`)
    if (expected.lastIdx > 0) model.learnCursor(s, expected.lastIdx, r.cursor, where)
    else check(r.cursor === (cursor ?? s.issuedCursor), `${where}: empty answer with cursor ${r.cursor}, expected the request's ${String(cursor ?? s.issuedCursor)}`)
    check(JSON.stringify(sorted(r.rooms)) === JSON.stringify(sorted(s.rooms)) && r.user === s.user, `${where}: read rooms/user ${JSON.stringify([r.rooms, r.user])}`)
    if (m !== 'lost') s.clientCursor = r.cursor
    summary.reads++
    summary.missed += r.missed
    return data.length > 0 || r.missed > 0
  }

  const checkStats = async (where: string): Promise<void> => {
    const st = await store.stats()
    const reported = model.sessions.reduce((n, s) => n + s.missedTotal, 0)
    check(st.delivered === model.delivered, `${where}: stats.delivered ${st.delivered}, expected ${model.delivered}`)
    check(st.sessions === model.present().length, `${where}: stats.sessions ${st.sessions}, expected ${model.present().length}`)
    check(st.dropped >= reported && st.dropped <= model.dropped + model.staleUndelivered(),
      `${where}: stats.dropped ${st.dropped}, expected between ${reported} (reported) and ${model.dropped} + ${model.staleUndelivered()}`)
    const logs = 1 + model.present().length + USERS.length + ROOMS.length
    const cap = Math.max(config.maxMailboxMessages, config.history?.maxMessages ?? 0)
    check(st.queued >= 0 && st.queued <= logs * cap, `${where}: stats.queued ${st.queued} beyond ${logs} logs of at most ${cap}`)
  }

  await register(['a'], 'u0', 'setup')
  await register(['a', 'b'], 'u0', 'setup')
  await register([], null, 'setup')

  for (const [step, o] of plan.entries()) {
    const where = `step ${step} ${JSON.stringify(o)}`
    summary.ops++
    switch (o.op) {
      case 'wait':
        model.now += o.steps * STEP
        break
      case 'publish': {
        const data = ++counter
        let target: LogTarget
        let recipients: MSession[]
        let count: number
        if (o.to === 'all') {
          target = { kind: 'all' }
          recipients = model.present().filter((s) => model.live(s))
          count = recipients.length
        } else if (o.to === 'room') {
          const name = ROOMS[o.n % ROOMS.length]
          target = { kind: 'room', room: name }
          recipients = model.members(name).filter((s) => model.live(s))
          count = model.members(name).length
        } else if (o.to === 'user') {
          const user = USERS[o.n % USERS.length]
          target = { kind: 'user', user }
          recipients = model.userSessions(user).filter((s) => model.live(s))
          count = model.userSessions(user).length
        } else {
          const s = pick(o.n)
          target = { kind: 'session', id: s.id }
          recipients = model.live(s) ? [s] : []
          count = recipients.length
        }
        const id = `${tag}-m${data}`
        const json = JSON.stringify({ id, type: 'message', from: null, room: null, to: null, data, ts: model.now })
        const m = model.newMessage(data, Buffer.byteLength(json))
        const got = await store.publish({ id, ts: model.now, json, target }, model.now)
        check(got === count, `${where}: publish returned ${got} recipients, expected ${count}`)
        for (const s of recipients) model.deliver(s, m)
        if (target.kind === 'room') model.addHistory(target.room, m)
        summary.publishes++
        break
      }
      case 'poll': {
        const s = pick(o.who)
        const expected = model.live(s)
        const cursor = o.mode === 'ahead' ? s.clientCursor : cursorFor(s, o.mode, o.pick)
        const maxBytes = maxBytesOf(o.bytes)
        const got = await store.poll(s.tokenHash, cursor, o.hold ? HOLD_MS : 0, { limit: o.limit, maxBytes }, model.now)
        if (!expected) {
          check(!got.ok && got.reason === 'unknown', `${where}: poll of a session that is not live returned ${JSON.stringify(got)}`)
          break
        }
        if (!got.ok) return fail(`${where}: poll returned ${JSON.stringify(got)}`)
        s.lastSeen = model.now
        const answered = compare(s, got.read, cursor, o.mode, o.limit, maxBytes, where)
        if (answered || !o.hold) {
          check(got.seq === 0, `${where}: answered, but seq ${got.seq}`)
        } else {
          check(got.seq > s.pollSeq && got.read.pollSeq === got.seq, `${where}: held with seq ${got.seq} (pollSeq ${got.read.pollSeq}), previous ${s.pollSeq}`)
          s.pollSeq = got.seq
          s.seqs.push(got.seq)
          s.holding = true
        }
        break
      }
      case 'read': {
        // A re-read, as after a wake-up (no authentication): only for live sessions.
        const s = pick(o.who)
        if (!model.live(s)) break
        const cursor = cursorFor(s, o.mode, o.pick)
        const maxBytes = maxBytesOf(o.bytes)
        const seq = o.withSeq && s.holding ? s.pollSeq : undefined
        const r = await store.read(s.id, cursor, { limit: o.limit, maxBytes }, model.now, seq)
        if (o.mode === 'ahead') {
          check(r === 'bad-cursor', `${where}: read with cursor ${String(cursor)} ahead of ${s.issuedCursor} returned ${JSON.stringify(r)}`)
          break
        }
        if (r === null || r === 'bad-cursor') return fail(`${where}: read returned ${String(r)}`)
        check(r.pollSeq === s.pollSeq, `${where}: pollSeq ${r.pollSeq}, expected ${s.pollSeq}`)
        if (compare(s, r, cursor, o.mode, o.limit, maxBytes, where) && seq !== undefined) {
          s.holding = false
          s.lastSeen = Math.max(s.lastSeen, model.now)
        }
        break
      }
      case 'head': {
        const s = pick(o.who)
        const cursor = o.mode === 'ahead' ? s.clientCursor : cursorFor(s, o.mode, o.pick)
        const got = await store.poll(s.tokenHash, cursor, HOLD_MS, { limit: 0, maxBytes: 1 << 30 }, model.now)
        if (!model.live(s)) {
          check(!got.ok, `${where}: HEAD of a session that is not live returned ${JSON.stringify(got)}`)
          break
        }
        if (!got.ok) return fail(`${where}: HEAD returned ${JSON.stringify(got)}`)
        s.lastSeen = model.now
        check(got.seq === 0, `${where}: a HEAD was held`)
        compare(s, got.read, cursor, 'lost', 0, 0, where)
        break
      }
      case 'release': {
        const s = pick(o.who)
        if (s.state !== 'present' || !s.holding) break
        if (o.stale) {
          if (s.seqs.length >= 2) await store.endPoll(s.id, s.seqs[0], model.now)
        } else {
          await store.endPoll(s.id, s.pollSeq, model.now)
          s.holding = false
          s.lastSeen = Math.max(s.lastSeen, model.now)
        }
        break
      }
      case 'join': {
        const s = pick(o.who)
        if (!await authenticate(s, where)) break
        const name = ROOMS[o.room]
        const hist = model.historyNow(name)
        const got = await store.join(s.id, name, model.now, o.history > 0 ? o.history : undefined)
        const result = s.rooms.has(name) ? 'already' : s.rooms.size >= config.maxRoomsPerSession ? 'too-many' : 'joined'
        if (result === 'joined') model.join(s, name)
        check(got.result === result, `${where}: join returned ${JSON.stringify(got)}, expected ${result}`)
        if (got.result === 'joined' || got.result === 'already') {
          check(got.size === model.members(name).length, `${where}: join size ${got.size}, expected ${model.members(name).length}`)
          if (o.history > 0) {
            const want = hist.slice(-o.history)
            const items = got.history?.items.map((j) => (JSON.parse(j) as { data: number }).data)
            check(JSON.stringify(items) === JSON.stringify(want.map((m) => m.data)) && (got.history?.next !== null) === (hist.length > want.length),
              `${where}: join history ${JSON.stringify(got.history)}, expected ${JSON.stringify(want.map((m) => m.data))} of ${hist.length}`)
          } else {
            check(got.history === undefined, `${where}: join without history returned one`)
          }
        }
        break
      }
      case 'leave': {
        const s = pick(o.who)
        if (!await authenticate(s, where)) break
        const name = ROOMS[o.room]
        const was = s.rooms.has(name)
        if (was) {
          model.leave(s, name)
          if (s.box.some((m) => m.idx > s.issued)) summary.leftUnread++
        }
        const got = await store.leave(s.id, name, model.now)
        check(got.left === was && got.size === model.members(name).length, `${where}: leave returned ${JSON.stringify(got)}, expected ${was}, ${model.members(name).length}`)
        break
      }
      case 'touch':
        await authenticate(pick(o.who), where)
        break
      case 'end': {
        const s = pick(o.who)
        if (!await authenticate(s, where)) break
        const rooms = [...s.rooms]
        model.remove(s, 'ended')
        const got = await store.endSession(s.id)
        check(got !== null && got.id === s.id && got.user === s.user, `${where}: endSession returned ${JSON.stringify(got)}`)
        check(got !== null && JSON.stringify(sorted(got.rooms)) === JSON.stringify(sorted(rooms)) &&
          got.rooms.every((r, i) => got.sizes[i] === model.members(r).length), `${where}: ended rooms/sizes ${JSON.stringify(got)}`)
        check(await store.read(s.id, null, { limit: 10, maxBytes: 1 << 30 }, model.now) === null, `${where}: read after endSession is not null`)
        break
      }
      case 'endUser': {
        const user = USERS[o.user]
        const expected = model.userSessions(user)
        const roomsOf = new Map(expected.map((s) => [s.id, sorted(s.rooms)]))
        for (const s of expected) model.remove(s, 'ended')
        const got = await store.endUser(user)
        check(JSON.stringify(sorted(got.map((e) => e.id))) === JSON.stringify(sorted(roomsOf.keys())),
          `${where}: endUser ended ${JSON.stringify(got.map((e) => e.id))}, expected ${JSON.stringify([...roomsOf.keys()])}`)
        for (const e of got) check(JSON.stringify(sorted(e.rooms)) === JSON.stringify(roomsOf.get(e.id)), `${where}: rooms of ${e.id}`)
        break
      }
      case 'sweep': {
        const expected = model.present().filter((s) => !model.live(s))
        const got = await store.sweep(model.now, o.limit)
        check(got.length === Math.min(o.limit, expected.length), `${where}: sweep ended ${got.length}, expected ${Math.min(o.limit, expected.length)} of ${expected.length}`)
        for (const e of got) {
          const s = expected.find((x) => x.id === e.id)
          if (s === undefined) return fail(`${where}: sweep ended ${e.id}, which is not expired`)
          check(JSON.stringify(sorted(e.rooms)) === JSON.stringify(sorted(s.rooms)), `${where}: swept rooms of ${e.id}`)
          model.remove(s, 'swept')
          summary.swept++
        }
        break
      }
      case 'register':
        await register(o.rooms.map((r) => ROOMS[r]), o.user < USERS.length ? USERS[o.user] : null, where)
        break
      case 'members': {
        const name = o.room < ROOMS.length ? ROOMS[o.room] : null
        const list = (name === null ? model.present() : model.members(name)).filter((s) => model.live(s))
        const got: string[] = []
        let after: string | null = null
        for (let i = 0; i < 20; i++) {
          const page = await store.members(name, after, o.limit, model.now)
          check(page.items.length <= o.limit, `${where}: a page of ${page.items.length}`)
          for (const m of page.items) {
            const s = list.find((x) => x.id === m.id)
            check(s !== undefined && m.lastSeen === s.lastSeen && m.profile === null, `${where}: member ${JSON.stringify(m)}`)
            got.push(m.id)
          }
          if (page.next === null) break
          after = page.next
        }
        check(JSON.stringify(got) === JSON.stringify(list.map((s) => s.id)), `${where}: members ${JSON.stringify(got)}, expected ${JSON.stringify(list.map((s) => s.id))}`)
        break
      }
      case 'history': {
        const name = ROOMS[o.room]
        const want = model.historyNow(name).map((m) => m.data)
        const pages: number[][] = []
        let before: string | null = null
        for (let i = 0; i < 20; i++) {
          const page = await store.history(name, before, o.limit, model.now)
          pages.unshift(page.items.map((j) => (JSON.parse(j) as { data: number }).data))
          if (page.next === null) break
          before = page.next
        }
        const expected: number[][] = []
        for (let end = want.length; end > 0 || expected.length === 0; end -= o.limit) expected.unshift(want.slice(Math.max(0, end - o.limit), end))
        check(JSON.stringify(pages) === JSON.stringify(expected), `${where}: history pages ${JSON.stringify(pages)}, expected ${JSON.stringify(expected)}`)
        break
      }
      case 'userSessions': {
        const user = USERS[o.user]
        const want = model.userSessions(user).filter((s) => model.live(s)).map((s) => ({ id: s.id, profile: null, lastSeen: s.lastSeen }))
        const got = await store.userSessions(user, model.now)
        const key = (ms: Array<{ id: string }>): string => JSON.stringify([...ms].sort((x, y) => x.id < y.id ? -1 : 1))
        check(key(got) === key(want), `${where}: userSessions ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`)
        break
      }
      case 'lookup': {
        const s = pick(o.who)
        const got = await store.lookup(s.id, model.now)
        const want = model.live(s) ? { id: s.id, user: s.user } : null
        check(JSON.stringify(got) === JSON.stringify(want), `${where}: lookup ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`)
        break
      }
    }
    await checkStats(where)
  }

  // Drain: every live session reads everything with its cursor, then acknowledges it.
  for (const s of model.present().filter((x) => model.live(x))) {
    const where = `drain ${s.id}`
    const r = await store.read(s.id, s.clientCursor, { limit: 1000, maxBytes: 1 << 30 }, model.now)
    if (r === null || r === 'bad-cursor') return fail(`${where}: read returned ${String(r)}`)
    compare(s, r, s.clientCursor, 'ack', 1000, 1 << 30, where)
    const again = await store.read(s.id, s.clientCursor, { limit: 1000, maxBytes: 1 << 30 }, model.now)
    check(again !== null && again !== 'bad-cursor' && again.messages.length === 0 && again.missed === 0, `${where}: after the drain: ${JSON.stringify(again)}`)
  }
  await checkStats('drain')
  // Past every TTL (holds ended) a sweep frees every session and message, read or not.
  for (const s of model.present()) if (s.holding) await store.endPoll(s.id, s.pollSeq, model.now)
  model.now += 6000 * STEP
  for (let i = 0; i < 10 && (await store.sweep(model.now, 100)).length > 0; i++);
  const st = await store.stats()
  check(st.queued === 0 && st.sessions === 0, `after the final sweep: ${JSON.stringify(st)}`)
}

export function modelCases (t: Test, factory: ContractStoreFactory, runs: number): void {
  t.test('random operation sequences match the reference model (per-session mailboxes)', async (t) => {
    const summary: ModelSummary = { ops: 0, publishes: 0, reads: 0, missed: 0, swept: 0, leftUnread: 0 }
    const tagBase = randomBytes(3).toString('hex')
    let run = 0
    await fc.assert(
      fc.asyncProperty(fc.array(opArbitrary, { minLength: 1, maxLength: 80, size: 'max' }), fc.constantFrom(2, 5), async (plan, historyMax) => {
        const { store, cleanup } = await factory()
        const config = configOf(historyMax)
        try {
          await store.init(config, () => {})
          await runPlan(store, config, plan, `${tagBase}r${run++}`, summary)
        } finally {
          await store.close()
          await cleanup()
        }
      }),
      { numRuns: runs, seed: Number(process.env.MODEL_SEED ?? 20261128) }
    )
    // The generator must reach the interesting cases, or the property proves little.
    t.ok(summary.missed > 0, `messages were reported missed (${summary.missed})`)
    t.ok(summary.swept > 0, `sessions expired and were swept (${summary.swept})`)
    t.ok(summary.leftUnread > 0, `sessions left rooms with unread messages (${summary.leftUnread})`)
    t.pass(`${runs} sequences: ${summary.ops} operations, ${summary.publishes} publishes, ${summary.reads} reads, ${summary.missed} missed`)
  })
}

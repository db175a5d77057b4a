/**
 * The store contract: random publish / read / time sequences against a reference mailbox model.
 * The rules the cases keep: index.ts; what they work with: setup.ts.
 */
import { deepStrictEqual } from 'node:assert/strict'
import fc from 'fast-check'
import type { Test } from 'tap'
import type { MailboxStore, PublishTarget, StoreConfig } from '../../types/index.js'
import { sha256 } from '../helpers/store.js'
import { BASE_CONFIG, unique, type Contract } from './setup.js'

export function modelCases (t: Test, { factory }: Contract): void {
  t.test('random operation sequences match the reference mailbox model', async (t) => {
    const config: StoreConfig = { ...BASE_CONFIG, messageTtl: 10_000, sessionTtl: 1e9, maxMailboxMessages: 4, maxRoomsPerSession: 5 }
    const runs = 40
    let ops = 0
    await fc.assert(
      fc.asyncProperty(fc.array(opArbitrary, { minLength: 1, maxLength: 30 }), async (plan) => {
        const { store, cleanup } = await factory()
        try {
          await store.init(config, () => {})
          ops += await runModel(store, config, plan)
        } finally {
          await store.close()
          await cleanup()
        }
      }),
      { numRuns: runs, seed: 20261128, endOnFailure: true }
    )
    t.pass(`${runs} random sequences (${ops} operations) matched the model`)
  })
}

/* ---------------------------------------------------------------------------------------- */
/* The reference model of two mailboxes (sessions 0 and 1, both in room "r")                */
/* ---------------------------------------------------------------------------------------- */

type Op =
  | { op: 'publish', to: 'all' | 'room' | 0 | 1 }
  | { op: 'read', who: 0 | 1, cursor: 'latest' | 'previous' | 'null', limit: number }
  | { op: 'wait', ms: number }

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('publish' as const), to: fc.constantFrom('all' as const, 'room' as const, 0 as const, 1 as const) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('read' as const),
      who: fc.constantFrom(0 as const, 1 as const),
      cursor: fc.constantFrom('latest' as const, 'previous' as const, 'null' as const),
      limit: fc.integer({ min: 0, max: 5 })
    })
  },
  // Multiples of 3 never add up to the 10 000 ms messageTtl: the model does not pin the boundary.
  { weight: 2, arbitrary: fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 2333 }).map((n) => n * 3) }) }
)

interface ModelMailbox {
  /** Queued (not acknowledged, not dropped) messages, oldest first. */
  items: Array<{ seq: number, ts: number, data: number }>
  nextSeq: number
  issued: number
  missed: number
  /** The cursor of the client's latest answer, and the one it sent before (a "lost response" resend). */
  latest: number
  previous: number
}

/** Plays `plan` on the store and on the model, throwing at the first difference. Returns the number of operations. */
async function runModel (store: MailboxStore, config: StoreConfig, plan: Op[]): Promise<number> {
  let now = Date.now()
  const ids = [unique('s'), unique('s')]
  for (const id of ids) {
    const ok = await store.createSession({ id, tokenHash: sha256(id), profile: null, rooms: ['r'] }, now)
    deepStrictEqual(ok, true, 'createSession')
  }
  const boxes: ModelMailbox[] = ids.map(() => ({ items: [], nextSeq: 1, issued: 0, missed: 0, latest: 0, previous: 0 }))
  const totals = { delivered: 0, dropped: 0 }
  let counter = 0

  const drop = (box: ModelMailbox): void => {
    const gone = box.items.shift()
    if (gone !== undefined && gone.seq > box.issued) {
      box.missed++
      totals.dropped++
    }
  }
  const expire = (box: ModelMailbox): void => {
    while (box.items.length > 0 && box.items[0].ts + config.messageTtl <= now) drop(box)
  }

  for (const [step, o] of plan.entries()) {
    const where = `step ${step} ${JSON.stringify(o)}`
    if (o.op === 'wait') {
      now += o.ms
    } else if (o.op === 'publish') {
      const data = ++counter
      const target: PublishTarget = o.to === 'all'
        ? { kind: 'all' }
        : o.to === 'room' ? { kind: 'room', room: 'r' } : { kind: 'session', id: ids[o.to] }
      const recipients = typeof o.to === 'number' ? [boxes[o.to]] : boxes
      for (const box of recipients) {
        expire(box)
        while (box.items.length >= config.maxMailboxMessages) drop(box)
        box.items.push({ seq: box.nextSeq++, ts: now, data })
      }
      const json = JSON.stringify({ id: `m${data}`, type: 'message', from: null, room: null, to: null, data, ts: now })
      const count = await store.publish({ id: `m${data}-${ids[0]}`, ts: now, json, target }, now)
      deepStrictEqual(count, recipients.length, `${where}: recipients`)
    } else {
      const box = boxes[o.who]
      const sent = o.cursor === 'null' ? null : o.cursor === 'latest' ? box.latest : box.previous
      const after = sent ?? box.issued
      // The client's acknowledged position only moves forward: "previous" is a resend of the
      // cursor it sent last, which is never behind what it acknowledged.
      while (box.items.length > 0 && box.items[0].seq <= after) box.items.shift()
      expire(box)
      const out = box.items.filter((m) => m.seq > after).slice(0, o.limit)
      const cursor = out.length > 0 ? out[out.length - 1].seq : after
      for (const m of out) {
        if (m.seq > box.issued) totals.delivered++
      }
      box.issued = Math.max(box.issued, cursor)
      const expected = { data: out.map((m) => m.data), cursor, missed: box.missed }
      box.missed = 0

      const r = await store.read(ids[o.who], sent, o.limit, now)
      if (r === null || r === 'bad-cursor') throw new Error(`${where}: read returned ${String(r)}`)
      const got = { data: r.messages.map((m) => (JSON.parse(m) as { data: number }).data), cursor: r.cursor, missed: r.missed }
      deepStrictEqual(got, expected, `${where}: read`)
      if (sent !== null) {
        box.previous = sent
        box.latest = cursor
      } else {
        box.previous = box.latest = cursor
      }
    }
    // The model drops expired messages lazily (when the mailbox is read or appended to); a store
    // may drop them earlier. So queued and dropped are exact up to the expired ones still queued.
    const st = await store.stats()
    let queued = 0
    let stale = 0
    let staleUndelivered = 0
    for (const b of boxes) {
      queued += b.items.length
      for (const m of b.items) {
        if (m.ts + config.messageTtl > now) continue
        stale++
        if (m.seq > b.issued) staleUndelivered++
      }
    }
    deepStrictEqual(st.sessions, 2, `${where}: stats.sessions`)
    deepStrictEqual(st.delivered, totals.delivered, `${where}: stats.delivered`)
    deepStrictEqual(st.queued <= queued && st.queued >= queued - stale, true, `${where}: stats.queued ${st.queued}, model ${queued} (${stale} expired)`)
    deepStrictEqual(st.dropped >= totals.dropped && st.dropped <= totals.dropped + staleUndelivered, true,
      `${where}: stats.dropped ${st.dropped}, model ${totals.dropped} (+${staleUndelivered} expired)`)
  }
  return plan.length
}

/**
 * The order of a tab group's batches (lib/client/batches.ts), one tab's `BatchLog` on its own
 * with a sink that records what it hands to the client: gaps asked for and filled, gaps given up
 * on (counted as lost), a tab behind the leader, the welcome of a new, a returning and a resyncing
 * tab, a new leader merging what the others have, and the bounded ring of recent batches.
 * test/client-tabs*.test.ts run the same code through whole tab groups.
 */
import t from 'tap'
import { BatchLog, type Batch, type BatchSink, type View } from '../lib/client/batches.js'
import type { Message } from '../lib/wire.js'
import { sleep } from './helpers/wait.js'

const GAP_MS = 40
const SESSION = { id: 's1', token: 't1' }

/** What the log did, in order: `batch N`, `late N`, `lost N`, `adopt N`, `need N`. */
class Sink implements BatchSink {
  readonly events: string[] = []
  batch = (b: Batch, late: boolean): void => { this.events.push(`${late ? 'late' : 'batch'} ${b.seq}`) }
  adopt = (v: View): void => { this.events.push(`adopt ${v.seq}`) }
  lost = (count: number): void => { this.events.push(`lost ${count}`) }
  take (): string[] {
    return this.events.splice(0)
  }
}

function make (after: number | null): { log: BatchLog, sink: Sink } {
  const sink = new Sink()
  const l = new BatchLog(after, sink, (seq) => sink.events.push(`need ${seq}`), GAP_MS)
  return { log: l, sink }
}

function messages (seq: number, count: number): Message[] {
  return Array.from({ length: count }, (_, i) => ({ id: `m${seq}.${i}`, type: 'message', from: null, data: { seq }, at: 0 }) as unknown as Message)
}

/** Batch `seq` with `count` messages, `total` counting them. */
function batch (seq: number, total: number, count = 1): Batch {
  return { seq, total, session: SESSION, cursor: String(total), messages: messages(seq, count), missed: 0 }
}

const pos = (l: BatchLog): { seq: number, total: number } => ({ seq: l.seq, total: l.total })

function view (seq: number, total: number): View {
  return { session: SESSION, cursor: String(total), seq, total, rooms: [], state: 'live' }
}

/** A follower that opened on an empty group: synced at 0. */
function follower (): { log: BatchLog, sink: Sink } {
  const x = make(null)
  x.log.catchUp(view(0, 0), [])
  x.sink.take()
  return x
}

t.test('a follower hands batches over in order; a gap is asked for once and filled when the batches come', async (t) => {
  const { log, sink } = follower()
  log.add(batch(1, 1))
  log.add(batch(3, 3))
  log.add(batch(4, 4))
  t.same(sink.take(), ['batch 1', 'need 1'], '3 after 1: held, and the group asked once for what came after 1')
  log.add(batch(2, 2))
  t.same(sink.take(), ['batch 2', 'batch 3', 'batch 4'], 'the missing batch fills the gap: the held ones follow in order')
  t.same(pos(log), { seq: 4, total: 4 })
  log.add(batch(3, 3))
  t.same(sink.take(), ['late 3'], 'a batch sent again (the answer to the need) is handed as late: only new ids count')
  await sleep(GAP_MS * 3)
  t.same(sink.take(), [], 'the gap was filled: nothing given up on later')
  t.same(log.since(2).map(b => b.seq), [3, 4], 'the recent batches after a number, for a tab that lacks them')
  t.same(log.since(null), [], 'nothing for a tab with no number of its own')
})

t.test('a gap nobody fills is given up on: the skipped batches\' messages are lost, the rest goes on', async (t) => {
  const { log, sink } = follower()
  log.add(batch(1, 2, 2))
  log.add(batch(4, 9, 3))
  log.add(batch(6, 12, 2))
  t.same(sink.take(), ['batch 1', 'need 1'])
  await sleep(GAP_MS * 3)
  t.same(sink.take(), ['lost 4', 'batch 4'], 'batches 2 and 3 held 9 - 3 - 2 = 4 messages; 4 follows')
  t.same(pos(log), { seq: 4, total: 9 })
  log.add(batch(7, 13))
  t.same(sink.take(), ['need 4'], 'batch 5 is still missing (6 is held): the next batch asks for it')
  await sleep(GAP_MS * 3)
  t.same(sink.take(), ['lost 1', 'batch 6', 'batch 7'], 'batch 5 had 12 - 2 - 9 = 1 message')
  t.same(pos(log), { seq: 7, total: 13 })
})

t.test('behind: a follower the leader is ahead of asks for what it lacks, once per wait', async (t) => {
  const { log, sink } = follower()
  log.add(batch(1, 1))
  log.add(batch(2, 2))
  sink.take()
  log.behind(2)
  log.behind(1)
  t.same(sink.take(), [], 'the leader is not ahead: nothing to ask')
  log.behind(4)
  log.behind(5)
  t.same(sink.take(), ['need 2'], 'asked once for what came after 2, not again while waiting')
  await sleep(GAP_MS * 3)
  t.same(sink.take(), [], 'an unanswered ask loses nothing (no batch shows a gap)')
  log.behind(5)
  t.same(sink.take(), ['need 2'], 'the wait is over: asked again')
  log.add(batch(3, 3))
  log.add(batch(4, 4))
  log.add(batch(5, 5))
  t.same(sink.take(), ['batch 3', 'batch 4', 'batch 5'])

  log.unsync()
  log.behind(9)
  t.same(sink.take(), [], 'not synced (waiting for a welcome): the welcome will bring it')
  log.stop()
})

t.test('a returning tab: before the welcome, batches up to its number are dropped and later ones held', async (t) => {
  const { log, sink } = make(5)
  log.add(batch(4, 4))
  log.add(batch(6, 6))
  t.same(sink.take(), [], 'nothing handed over before the welcome')
  log.catchUp(view(7, 7), [batch(6, 6), batch(7, 7)])
  t.same(sink.take(), ['adopt 7', 'batch 6', 'batch 7'], 'the welcome\'s batches after 5, once each, in order; 4 is not handed again')
  t.ok(log.synced)
  log.catchUp(view(9, 9), [batch(8, 8), batch(9, 9)])
  t.same(sink.take(), [], 'a second welcome (the tab greeted twice) changes nothing')
  t.same(pos(log), { seq: 7, total: 7 })
})

t.test('a new tab starts from the present, with the batches it heard before the welcome', async (t) => {
  const heard = make(null)
  heard.log.add(batch(5, 20, 3))
  heard.log.add(batch(6, 22, 2))
  heard.log.catchUp(view(5, 20), [])
  t.same(heard.sink.take(), ['adopt 5', 'batch 5', 'batch 6'],
    'batch 5 came before the welcome that counts it: handed over, and 6 after it; nothing counted lost')
  t.same(pos(heard.log), { seq: 6, total: 22 })

  const silent = make(null)
  silent.log.add(batch(9, 30))
  silent.log.catchUp(view(8, 29), [batch(7, 28), batch(8, 29)])
  t.same(silent.sink.take(), ['adopt 8', 'batch 9'], 'nothing of the past for a new tab, only what came after the view')
  t.same(pos(silent.log), { seq: 9, total: 30 })
})

t.test('a tab back after a freeze: what the recent batches no longer hold is counted lost', async (t) => {
  const { log, sink } = follower()
  log.add(batch(1, 4, 4))
  log.unsync()
  log.catchUp(view(20, 60), [])
  t.same(sink.take(), ['batch 1', 'lost 56', 'adopt 20'], '60 - 4 messages gone by, none of them to be had')
  t.same(pos(log), { seq: 20, total: 60 })

  log.unsync()
  log.catchUp(view(31, 75), [batch(30, 72, 2), batch(31, 75, 3)])
  t.same(sink.take(), ['adopt 31', 'lost 10', 'batch 30', 'batch 31'], 'the ring starts at 30: 70 - 60 = 10 messages of batches 21..29 lost, then 30 and 31')
  t.same(pos(log), { seq: 31, total: 75 })
})

t.test('a tab replaced while it led asks again from before its number: late batches in order, then the new ones', async (t) => {
  const { log, sink } = follower()
  for (let seq = 1; seq <= 6; seq++) log.add(batch(seq, seq))
  sink.take()
  log.unsync()
  log.add(batch(7, 7))
  log.catchUp(view(8, 8), [batch(5, 5), batch(7, 7), batch(2, 2), batch(8, 8), batch(4, 4)])
  t.same(sink.take(), ['late 2', 'late 4', 'late 5', 'adopt 8', 'batch 7', 'batch 8'],
    'the batches up to 6 as late (the client keeps what is new by id), sorted; 7 and 8 as new, once')
  t.same(pos(log), { seq: 8, total: 8 })
})

t.test('a new leader merges what the others have, then goes on from there', async (t) => {
  await t.test('batches it lacks: handed over in order', async (t) => {
    const { log, sink } = follower()
    for (let seq = 1; seq <= 3; seq++) log.add(batch(seq, seq))
    sink.take()
    log.merge(view(5, 5), [batch(2, 2), batch(4, 4), batch(5, 5)])
    log.merge(view(4, 4), [batch(4, 4)])
    log.settle()
    t.same(sink.take(), ['batch 4', 'batch 5'], 'only what is after its own number, once; an answer with less changes nothing')
    t.same(log.next({ session: SESSION, cursor: 'c', messages: messages(6, 2), missed: 0 }), { session: SESSION, cursor: 'c', messages: messages(6, 2), missed: 0, seq: 6, total: 7 },
      'its own next poll response is numbered after them')
  })

  await t.test('a tab further on that has no batches to give: the leader adopts its view', async (t) => {
    const { log, sink } = follower()
    log.add(batch(1, 1))
    sink.take()
    log.merge(view(9, 20), [])
    t.same(sink.take(), ['adopt 9'], 'its cursor, so the leader polls on from there')
    t.same(pos(log), { seq: 9, total: 20 })
  })

  await t.test('a gap in what the others have: settled as lost once the leader stops listening', async (t) => {
    const { log, sink } = follower()
    log.add(batch(1, 1))
    sink.take()
    log.merge(view(4, 9), [batch(4, 9, 3)])
    t.same(sink.take(), [], 'batch 4 held: 2 and 3 may still come from another tab')
    log.merge(view(4, 9), [batch(3, 6, 3), batch(4, 9, 3)])
    t.same(sink.take(), [], 'still no 2')
    log.settle()
    t.same(sink.take(), ['lost 2', 'batch 3', 'batch 4'], 'settled: batch 2\'s 6 - 3 - 1 = 2 messages lost, 3 and 4 handed over')
    t.same(pos(log), { seq: 4, total: 9 })
  })

  await t.test('a new tab that leads starts from the group\'s present, not from its past', async (t) => {
    const { log, sink } = make(null)
    log.merge(view(9, 40), [batch(8, 38), batch(9, 40, 2)])
    log.merge(view(9, 40), [batch(9, 40, 2)])
    log.settle()
    t.same(sink.take(), ['adopt 9'], 'the view adopted; no old batch handed over')
    t.same(pos(log), { seq: 9, total: 40 })
    t.ok(log.synced)
  })
})

t.test('the ring of recent batches keeps the last 64 batches and about 1000 messages, but always the newest', async (t) => {
  const { log, sink } = make(null)
  log.settle()
  for (let seq = 1; seq <= 70; seq++) log.add(log.next({ session: SESSION, cursor: String(seq), messages: messages(seq, 1), missed: 0 }))
  t.equal(sink.take().length, 70, 'the leader hands its own batches over')
  t.same(log.since(0).map(b => b.seq), Array.from({ length: 64 }, (_, i) => 7 + i), 'the last 64 batches')

  log.add(log.next({ session: SESSION, cursor: 'big', messages: messages(71, 1200), missed: 0 }))
  t.same(log.since(0).map(b => b.seq), [71], 'a batch of more than 1000 messages stays alone, but stays')
  log.add(log.next({ session: SESSION, cursor: 'after', messages: messages(72, 5), missed: 0 }))
  t.same(log.since(0).map(b => b.seq), [72], 'the next one pushes it out')
  t.same(pos(log), { seq: 72, total: 70 + 1200 + 5 })
})

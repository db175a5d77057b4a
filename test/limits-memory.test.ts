/**
 * PROTOCOL.md, "Mailbox" (a message stays until acknowledged or `messageTtl` passes) and issue
 * 13's "memory follows messageTtl": messages nobody reads are freed within about a sweep after
 * `messageTtl`, whatever their log (everyone, a room, a session's inbox), measured on the heap
 * after a GC. No timer per message: the sweep frees them.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { register, send } from './helpers/http.js'
import { start } from './helpers/server.js'
import { sleep, waitFor } from './helpers/wait.js'

function gcFunction (): (() => void) | null {
  try {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as unknown
    return typeof gc === 'function' ? gc as () => void : null
  } catch {
    return null
  }
}

const gc = gcFunction()

async function heap (): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc?.()
    await sleep(10)
  }
  return process.memoryUsage().heapUsed
}

const MB = 1024 * 1024

t.test('messages nobody reads are freed after messageTtl: memory back to where it was', { skip: gc === null ? 'no gc function in this Node' : false }, async (t) => {
  const TTL = 3000
  const s = await start(t, { messageTtl: TTL, sweepInterval: 50, rateLimit: false, maxMessageBytes: 200_000, sessionTtl: 60_000 })
  const a = await register(s, { rooms: ['r'] })
  const b = await register(s, { rooms: ['r'] })
  const base = await heap()
  const big = (i: number): string => String(i).padEnd(100_000, 'x')
  for (let i = 0; i < 80; i++) await s.app.longPoll.broadcast(big(i))
  for (let i = 80; i < 160; i++) t.equal((await send(s, a.token, { data: big(i), room: 'r' })).status === 202, true, `room message ${i}`)
  for (let i = 160; i < 240; i++) await s.app.longPoll.send(b.id, big(i))
  const full = await heap()
  const queued = (await s.app.longPoll.stats()).queued
  t.ok(queued >= 240, `${queued} messages kept`)
  t.ok(full - base > 15 * MB, `24 MB of messages on the heap (${((full - base) / MB).toFixed(1)} MB more)`)

  await sleep(TTL)
  t.ok(await waitFor(async () => (await s.app.longPoll.stats()).queued === 0, 'the sweep to free them', 5000, 50), 'nothing kept once messageTtl passed')
  const after = await heap()
  t.ok(after - base < 3 * MB, `the heap is back (${((after - base) / MB).toFixed(1)} MB above the start)`)
  const p = await s.request({ path: `/poll?cursor=${a.cursor}&wait=0`, token: a.token })
  t.equal(p.status, 200)
  t.equal(p.body.messages.length, 0, 'a reader finds nothing left')
  t.equal(p.body.missed, 162, 'and is told what it missed: the 2 join notices, the broadcasts and the room messages')
})

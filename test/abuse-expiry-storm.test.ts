/**
 * Abuse scenario of issue 13, the expiry storm, in a bounded form: 3 000 sessions of one room
 * expire together while 200 stay (a deploy, a network cut: no attacker needed). Before: every
 * remaining member got one `leave` per expired session, pushing its real messages out of its
 * mailbox, and the sweep blocked the event loop for seconds. Now: the room is above
 * `presenceLimit`, so no `leave` notice reaches the remaining members' mailboxes, no real
 * message is pushed out, and the sweep removes everyone within a few sweeps, in batches that
 * yield to I/O. (How long the event loop blocks is measured by the bench, not asserted here.)
 */
import t from 'tap'
import { register, type Session } from './helpers/http.js'
import { start } from './helpers/server.js'
import { sleep } from './helpers/wait.js'

t.test('3 000 sessions of a room expire together while 200 stay: no leave notice, no real message lost, all gone within a few sweeps', async (t) => {
  const STORM = 3000
  const STAY = 200
  const SESSION_TTL = 1500
  const SWEEP = 100
  const ended: string[] = []
  const s = await start(t, {
    sessionTtl: SESSION_TTL,
    sweepInterval: SWEEP,
    maxMailboxMessages: 50, // small: 3 000 leave notices would push everything out
    registerRateLimit: false, // 3 200 registrations from one address on purpose
    rateLimit: false,
    onSessionEnd: (info) => { ended.push(info.id) }
  })
  const storm: Session[] = []
  for (let i = 0; i < STORM; i++) storm.push(await register(s, { rooms: ['big'] }))
  const stay: Session[] = []
  for (let i = 0; i < STAY; i++) stay.push(await register(s, { rooms: ['big'] }))
  const real: string[] = []
  for (let i = 0; i < 10; i++) real.push((await s.app.longPoll.broadcast({ real: i }, { room: 'big' })).id)

  // The storm's sessions go silent; the stayers keep theirs alive without reading (HEAD with cursor 0).
  const started = Date.now()
  let sweepsWaited = 0
  while ((await s.app.longPoll.stats()).sessions > STAY && Date.now() - started < 20_000) {
    for (const x of stay) await s.request({ method: 'HEAD', path: '/poll?cursor=0', token: x.token })
    await sleep(SWEEP)
    sweepsWaited++
  }
  const elapsed = Date.now() - started
  const st = await s.app.longPoll.stats()
  t.equal(st.sessions, STAY, `the storm is gone, the ${STAY} stay (${elapsed} ms after the storm went silent)`)
  t.ok(elapsed < SESSION_TTL + 20 * SWEEP + 5000, `within a few sweeps of sessionTtl (${sweepsWaited} rounds of ${SWEEP} ms)`)
  t.equal(ended.length, STORM, 'onSessionEnd once per expired session')
  t.equal(new Set(ended).size, STORM, 'each exactly once')

  const members = await s.app.longPoll.members('big')
  t.equal(members.length, STAY, 'the room has the stayers')
  for (const [k, x] of stay.entries()) {
    const p = await s.request({ path: '/poll?cursor=0&wait=0', token: x.token })
    const messages = p.body.messages as Array<{ id: string, type: string }>
    if (messages.some((m) => m.type === 'leave') || p.body.missed !== 0 || messages.map((m) => m.id).join() !== real.join()) {
      t.fail(`stayer ${k}: ${messages.length} messages, ${messages.filter((m) => m.type === 'leave').length} leaves, missed ${String(p.body.missed)}`)
      break
    }
  }
  t.pass(`each of the ${STAY} stayers has exactly the 10 real messages: no leave notice, nothing missed`)
})

/**
 * The README's "Who may do what" example (examples/policy.ts), driven through inject: a signed
 * cookie decides who registers; only invited users join or read `team-*` rooms (at register and
 * by route); only admins post to everyone; a ban ends every tab of the user at once (their held
 * polls answered 401) and keeps them out.
 */
import t from 'tap'
import { buildPolicyApp, signUser, type Directory } from '../examples/policy.js'

const SECRET = 'test secret'

t.test('the policy example: invited users in team rooms, admins to everyone, a ban everywhere at once', async (t) => {
  const directory: Directory = { admins: new Set(['ada']), invited: new Map([['team-core', new Set(['ada', 'grace'])]]), banned: new Set() }
  const app = await buildPolicyApp(SECRET, directory, { logger: false })
  t.teardown(() => app.close())
  await app.ready()
  const as = (user: string): Record<string, string> => ({ cookie: `theme=dark; auth=${encodeURIComponent(signUser(SECRET, user))}` })
  const registerAs = async (user: string, rooms: string[] = []) => await app.inject({ method: 'POST', url: '/chat/register', headers: as(user), payload: { rooms } })
  const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

  t.equal((await app.inject({ method: 'POST', url: '/chat/register' })).statusCode, 401, 'no cookie: 401')
  t.equal((await app.inject({ method: 'POST', url: '/chat/register', headers: { cookie: 'auth=grace.00' } })).statusCode, 401, 'a forged cookie: 401')
  t.equal((await registerAs('mallory', ['team-core'])).json().code, 'LONGPOLL_FORBIDDEN', 'not invited: cannot ask for a team room at register')

  const grace = (await registerAs('grace', ['team-core'])).json()
  t.ok(typeof grace.token === 'string', 'invited: registered in the team room')
  const mallory = (await registerAs('mallory')).json()
  t.equal((await app.inject({ method: 'POST', url: '/chat/rooms/team-core/join', headers: bearer(mallory.token) })).json().code, 'LONGPOLL_FORBIDDEN', 'not invited: the join route refuses')
  t.equal((await app.inject({ method: 'POST', url: '/chat/rooms/open/join', headers: bearer(mallory.token) })).statusCode, 204, 'other rooms are open')
  t.same((await app.longPoll.members('lobby')).length, 2, 'everyone is put in the lobby by the server')

  const toAll = { method: 'POST' as const, url: '/chat/messages', payload: { data: 'hello all' } }
  t.equal((await app.inject({ ...toAll, headers: bearer(grace.token) })).json().code, 'LONGPOLL_FORBIDDEN', 'only admins post to everyone')
  const ada = (await registerAs('ada')).json()
  t.equal((await app.inject({ ...toAll, headers: bearer(ada.token) })).statusCode, 202, 'an admin does')

  // Mallory has two tabs; a ban ends both at once, held polls included.
  const tab2 = (await registerAs('mallory')).json()
  const polls = [mallory, tab2].map(async (x) => {
    const first = await app.inject({ method: 'GET', url: '/chat/poll?wait=0', headers: bearer(x.token) })
    return await app.inject({ method: 'GET', url: `/chat/poll?cursor=${first.json().cursor as string}`, headers: bearer(x.token) })
  })
  for (let i = 0; i < 100 && (await app.longPoll.stats()).heldPolls < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal((await app.longPoll.stats()).heldPolls, 2, 'both tabs hold a poll')
  t.equal((await app.inject({ method: 'POST', url: '/admin/ban/mallory', headers: as('grace') })).statusCode, 403, 'only admins ban')
  const ban = await app.inject({ method: 'POST', url: '/admin/ban/mallory', headers: as('ada') })
  t.same(ban.json(), { ended: 2 }, 'the ban ends both sessions')
  for (const res of await Promise.all(polls)) t.equal(res.json().code, 'LONGPOLL_UNKNOWN_SESSION', 'each held poll is answered 401')
  t.equal((await registerAs('mallory')).statusCode, 401, 'and the banned user cannot register again')
})

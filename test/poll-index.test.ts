/**
 * The index of held polls by log key (lib/poll-index.ts): which polls a wake of `all`, `s:<id>`,
 * `u:<user>` or `r:<room>` reads again, as polls come, change rooms or user, and go.
 */
import t from 'tap'
import { PollIndex, type Indexed } from '../lib/poll-index.js'

interface Poll extends Indexed { name: string }

const poll = (sessionId: string): Poll => ({ sessionId, name: sessionId, keys: [], rooms: [], user: null })

const names = (set: Set<Poll> | undefined): string[] => set === undefined ? [] : [...set].map(p => p.name).sort()

t.test('each poll is under all, its session, its user and its rooms', async (t) => {
  const index = new PollIndex<Poll>()
  const a = poll('A')
  const b = poll('B')
  index.add(a, ['lobby', 'den'], 'ada')
  index.add(b, ['lobby'], null)
  t.same(names(index.get('all')), ['A', 'B'])
  t.same(names(index.get('s:A')), ['A'])
  t.same(names(index.get('u:ada')), ['A'])
  t.same(names(index.get('r:lobby')), ['A', 'B'])
  t.same(names(index.get('r:den')), ['A'])
  t.equal(index.get('r:nowhere'), undefined, 'a key nobody waits on')
  t.same(a.keys, ['all', 's:A', 'u:ada', 'r:lobby', 'r:den'])

  index.remove(b)
  t.same(names(index.get('r:lobby')), ['A'])
  t.equal(index.get('s:B'), undefined, 'a key left empty is dropped')
  t.same(b.keys, [])
  index.remove(b)
  t.same(names(index.get('all')), ['A'], 'removing a poll twice changes nothing')
  index.remove(a)
  t.equal(index.get('all'), undefined, 'nothing left')
})

t.test('update: the same rooms and user leave the poll as it is; another room or user indexes it again', async (t) => {
  const index = new PollIndex<Poll>()
  const a = poll('A')
  index.add(a, ['lobby', 'den'], 'ada')
  const keys = a.keys
  index.update(a, ['lobby', 'den'], 'ada')
  t.equal(a.keys, keys, 'nothing changed: not indexed again')

  index.update(a, ['lobby', 'attic'], 'ada')
  t.same(names(index.get('r:attic')), ['A'], 'one room for another (as many rooms)')
  t.equal(index.get('r:den'), undefined)

  index.update(a, ['lobby', 'attic'], null)
  t.equal(index.get('u:ada'), undefined, 'the user went (same rooms)')
  t.same(names(index.get('r:lobby')), ['A'])

  index.update(a, ['lobby'], null)
  t.equal(index.get('r:attic'), undefined, 'a room fewer')
  t.same(a.keys, ['all', 's:A', 'r:lobby'])
})

t.test('a room listed twice is indexed once and removed cleanly', async (t) => {
  const index = new PollIndex<Poll>()
  const a = poll('A')
  const b = poll('B')
  index.add(a, ['lobby', 'lobby'], null)
  index.add(b, ['den'], null)
  t.same(names(index.get('r:lobby')), ['A'])
  index.remove(a)
  t.equal(index.get('r:lobby'), undefined)
  t.same(names(index.get('all')), ['B'], 'the other poll stays')
})

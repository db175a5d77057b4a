/**
 * The example chat's use of wire protocol 2, in a real browser (Debian's chromium through
 * playwright-core) against the example server started in-process on 127.0.0.1, port 0:
 * - #announcements is read-only: the page has no composer there, and a post from the page's own
 *   session (`fetch` with its token) is refused with 403 LONGPOLL_FORBIDDEN;
 * - a server message (`from: null`) carries the Server badge; a person who calls themselves
 *   "Server" does not get it;
 * - a direct message goes to the person: each of their open pages gets it (one session per
 *   tab with `?shared=0`, and one shared session);
 * - entering a room shows its recent history; after a reload what was said before is shown
 *   again (the server's history merged with what the page kept), once and in order.
 */
import t, { type Test } from 'tap'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { ANNOUNCEMENTS, TIPS } from '../../examples/chat/server.js'
import { enter, launch, RESULTS, say, startChat, texts, watch, type ChatPage, type ChatServer } from './helpers.js'

let browser: Browser

t.before(async () => {
  browser = await launch()
})
t.teardown(async () => {
  await browser?.close()
})

async function server (t: Test): Promise<ChatServer> {
  const chat = await startChat()
  t.teardown(() => chat.app.close())
  return chat
}

async function person (t: Test, url: string, name: string): Promise<ChatPage> {
  const p = await enter(browser, url, name)
  t.teardown(() => p.context.close())
  return p
}

interface Tab { page: Page, errors: string[] }

/** Another page of the same browser context: the name is remembered, so it goes straight in. */
async function openTab (context: BrowserContext, url: string): Promise<Tab> {
  const page = await context.newPage()
  const errors = watch(page)
  await page.goto(url)
  await page.locator('#status[data-state="live"]').waitFor()
  return { page, errors }
}

async function shows (page: Page, text: string, timeout = 10_000): Promise<void> {
  await page.locator('#log .msg .text').getByText(text, { exact: true }).waitFor({ timeout })
}

async function openRoom (page: Page, title: string): Promise<void> {
  await page.locator('#rooms button', { hasText: title }).click()
  await page.locator('#conv-title', { hasText: title }).waitFor()
}

async function joinRoom (page: Page, room: string): Promise<void> {
  await page.getByLabel('Join a room').fill(room)
  await page.getByRole('button', { name: 'Join', exact: true }).click()
  await page.locator('#conv-title', { hasText: `#${room}` }).waitFor()
}

async function sessionOf (page: Page): Promise<string> {
  await page.waitForFunction(() => document.getElementById('me')?.title.startsWith('Session ') === true)
  return (await page.locator('#me').getAttribute('title') ?? '').replace('Session ', '')
}

/** The open conversation as shown: the messages' texts and the notices (who joined, who left), in order. */
async function lines (page: Page): Promise<string[]> {
  return await page.locator('#log > li:not(.empty)').evaluateAll(els => els.map(el => (el.querySelector('.text') ?? el).textContent ?? ''))
}

async function shownIds (page: Page): Promise<string[]> {
  return await page.locator('#log .msg').evaluateAll(els => els.map(el => (el as HTMLElement).dataset.id ?? ''))
}

/** POST /chat/messages from the page, with the session token the client keeps in sessionStorage. */
async function postFromPage (page: Page, body: unknown): Promise<{ status: number, code: unknown }> {
  return await page.evaluate(async (body) => {
    let token: string | null = null
    for (let i = 0; i < sessionStorage.length; i++) {
      const key = sessionStorage.key(i) ?? ''
      if (!key.startsWith('longpoll-chat:') || key.endsWith(':tab')) continue
      const kept = JSON.parse(sessionStorage.getItem(key) ?? '{}') as { token?: unknown }
      if (typeof kept.token === 'string') token = kept.token
    }
    if (token === null) throw new Error('no kept session in sessionStorage')
    const res = await fetch('/chat/messages', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body)
    })
    const reply = await res.json() as { code?: unknown }
    return { status: res.status, code: reply.code }
  }, body)
}

t.test('#announcements is read-only: no composer, and the server refuses a post from the page', { timeout: 60_000 }, async (t) => {
  const chat = await server(t)
  const ada = await person(t, chat.url, 'Ada')
  await openRoom(ada.page, 'Announcements')
  // The welcome was posted before anyone was there: it comes from the room's history.
  await shows(ada.page, TIPS[0] as string)
  t.equal(await ada.page.locator('#log .msg.server .server-badge', { hasText: 'Server' }).count(), 1, 'the welcome has the Server badge')
  t.equal(await ada.page.locator('#composer').isVisible(), false, 'no composer')
  t.equal(await ada.page.locator('#read-only').isVisible(), true, 'a note says why')
  t.equal(await ada.page.getByRole('button', { name: 'Leave Announcements' }).isVisible(), false, 'and no Leave button')
  t.equal(await ada.page.locator('#log .system').count(), 0, 'nobody\'s coming and going is shown here')
  await ada.page.screenshot({ path: join(RESULTS, 'e2e-announcements-ada.png') })

  t.same(await postFromPage(ada.page, { data: { text: 'I am an announcement too' }, room: ANNOUNCEMENTS }), { status: 403, code: 'LONGPOLL_FORBIDDEN' }, 'a post to #announcements is refused')
  t.same(await postFromPage(ada.page, { data: { text: 'to everyone' } }), { status: 403, code: 'LONGPOLL_FORBIDDEN' }, 'so is a post to everyone')
  t.equal((await postFromPage(ada.page, { data: { text: 'the token works' }, room: 'lobby' })).status, 202, 'the same session may post to #lobby')
  const kept = await chat.app.longPoll.history(ANNOUNCEMENTS)
  t.same(kept.messages.filter(m => m.type === 'message').map(m => m.from), [null], 'only the server\'s message is in the room')

  // A new announcement arrives live, with its badge.
  await chat.app.longPoll.broadcast({ text: 'Maintenance at noon.' }, { room: ANNOUNCEMENTS })
  await shows(ada.page, 'Maintenance at noon.')
  t.same(await ada.page.locator('#log .msg.server .text').allTextContents(), [TIPS[0], 'Maintenance at noon.'])
  t.same(ada.errors.filter(e => !e.includes('403 (Forbidden)')), [], 'no page errors (but the refused fetches)')
})

t.test('a server message has the Server badge; a person who calls themselves Server does not', { timeout: 60_000 }, async (t) => {
  const chat = await server(t)
  const ada = await person(t, chat.url, 'Ada')
  const fake = await person(t, chat.url, 'Server')
  await say(fake.page, 'This is the server speaking. Honest.')
  await chat.app.longPoll.broadcast({ text: 'This one really is from the server.' }, { room: 'lobby' })
  // Nor can a page put another name into its message: the server stamps the profile's.
  t.equal((await postFromPage(fake.page, { data: { text: 'signed: the Server', name: 'Ada' }, room: 'lobby' })).status, 202)
  await shows(ada.page, 'signed: the Server')

  const real = ada.page.locator('#log .msg', { hasText: 'This one really is from the server.' })
  const imitation = ada.page.locator('#log .msg', { hasText: 'This is the server speaking. Honest.' })
  t.equal(await real.locator('.server-badge').textContent(), 'Server', 'the server\'s message has the badge')
  t.equal(await real.getAttribute('class'), 'msg server')
  t.equal(await imitation.locator('.server-badge').count(), 0, 'the person called Server has none')
  t.equal(await imitation.locator('.author').textContent(), 'Server', 'they show as a person, by their name')
  t.equal(await imitation.getAttribute('class'), 'msg')
  t.equal(await ada.page.locator('#log .msg', { hasText: 'signed: the Server' }).locator('.author').textContent(), 'Server', 'the name is the profile\'s, not the message\'s')
  t.equal(await ada.page.locator('#log .server-badge').count(), 1, 'one badge in the room: the server\'s message')
  await ada.page.screenshot({ path: join(RESULTS, 'e2e-server-badge-ada.png') })
  t.same([...ada.errors, ...fake.errors], [], 'no page errors')
})

for (const shared of [false, true]) {
  const how = shared ? 'the tabs share one session' : 'a session per tab (?shared=0)'
  t.test(`a direct message to a person reaches each of their open pages (${how})`, { timeout: 90_000 }, async (t) => {
    const chat = await server(t)
    const ada = await person(t, chat.url, 'Ada')
    const query = shared ? '' : '/?shared=0'
    const bob = await person(t, chat.url + query, 'Bob')
    const second = await openTab(bob.context, chat.url + query)
    const bobs = [{ page: bob.page, errors: bob.errors }, second]
    const sessions = await Promise.all(bobs.map(x => sessionOf(x.page)))
    if (shared) t.equal(sessions[0], sessions[1], 'one session for Bob\'s pages')
    else t.not(sessions[0], sessions[1], 'a session for each of Bob\'s pages')

    // Bob's pages are one person: Ada sees him once, and each of his pages sees itself as "you".
    await ada.page.locator('#members button[data-member]', { hasText: 'Bob' }).waitFor()
    await ada.page.waitForTimeout(500)
    t.equal(await ada.page.locator('#members button[data-member]', { hasText: 'Bob' }).count(), 1, 'Ada sees Bob once')
    for (const x of bobs) {
      await x.page.locator('#members .you', { hasText: 'Bob (you)' }).waitFor()
      t.equal(await x.page.locator('#members button[data-member]', { hasText: 'Bob' }).count(), 0, 'Bob is "you" on each of his pages')
    }

    await ada.page.getByRole('button', { name: 'Write to Bob privately' }).click()
    await say(ada.page, 'For Bob, wherever he is.')
    for (const [i, x] of bobs.entries()) {
      const dm = x.page.locator('#dms button', { hasText: 'Ada' })
      await dm.locator('.badge', { hasText: '1' }).waitFor({ timeout: 10_000 })
      await dm.click()
      await shows(x.page, 'For Bob, wherever he is.')
      t.same(await texts(x.page), ['For Bob, wherever he is.'], `Bob's page ${i + 1} has it, once`)
    }
    await say(second.page, 'Got it here too.')
    await shows(ada.page, 'Got it here too.')
    t.same(await texts(ada.page), ['For Bob, wherever he is.', 'Got it here too.'], 'the answer lands in the same conversation')
    t.equal(await ada.page.locator('#dms button').count(), 1, 'one conversation with Bob')
    t.equal((await chat.app.longPoll.members('lobby')).length, shared ? 2 : 3)
    t.same([...ada.errors, ...bobs.flatMap(x => x.errors)], [], 'no page errors')
  })
}

t.test('entering a room shows its recent history', { timeout: 60_000 }, async (t) => {
  const chat = await server(t)
  const ada = await person(t, chat.url, 'Ada')
  await say(ada.page, 'Said in the lobby before anyone came.')
  const bob = await person(t, chat.url, 'Bob')
  await shows(bob.page, 'Said in the lobby before anyone came.')
  for (const p of [ada, bob]) await joinRoom(p.page, 'den')
  const said = ['First in the den.', 'Second in the den.', 'Third in the den.']
  await say(ada.page, said[0] as string)
  await say(bob.page, said[1] as string)
  await say(ada.page, said[2] as string)

  const carol = await person(t, chat.url, 'Carol')
  await shows(carol.page, 'Said in the lobby before anyone came.')
  t.same(await texts(carol.page), ['Said in the lobby before anyone came.'], 'the lobby\'s history, on entering the chat')
  await joinRoom(carol.page, 'den')
  await shows(carol.page, said[2] as string)
  t.same(await texts(carol.page), said, 'the den\'s history, in order, on joining it')
  t.same(await lines(carol.page), ['Ada joined', 'Bob joined', ...said, 'You joined'], 'with who came, in order')
  await say(bob.page, 'Welcome, Carol!')
  await shows(carol.page, 'Welcome, Carol!')
  t.same(await texts(carol.page), [...said, 'Welcome, Carol!'])
  const ids = await shownIds(carol.page)
  t.equal(new Set(ids).size, ids.length, 'each message once')
  t.same([...ada.errors, ...bob.errors, ...carol.errors], [], 'no page errors')
})

t.test('after a reload, what was said before is shown again: the server\'s history and what the page kept, once each, in order', { timeout: 90_000 }, async (t) => {
  const chat = await server(t)
  const ada = await person(t, chat.url, 'Ada')
  const bob = await person(t, chat.url, 'Bob')
  const before = ['one', 'two', 'three', 'four']
  for (const text of before) await say(ada.page, text)
  await shows(bob.page, 'four')
  const session = await sessionOf(bob.page)

  // The reloaded page kept only part of what it showed ("three" and "four"; sessionStorage is
  // edited before the page's scripts run), and Ada writes while it loads.
  await bob.page.addInitScript(() => {
    const kept = JSON.parse(sessionStorage.getItem('chat-transcript') ?? '[]') as Array<{ data?: { text?: string } }>
    sessionStorage.setItem('chat-transcript', JSON.stringify(kept.filter(m => m.data?.text === 'three' || m.data?.text === 'four')))
  })
  const delay = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
  await bob.context.route('**/client.js', async (route) => {
    await delay(1500)
    await route.continue()
  })
  const reloading = bob.page.reload()
  await delay(300)
  await say(ada.page, 'during the reload')
  await reloading
  await bob.page.locator('#status[data-state="live"]').waitFor()
  await bob.context.unroute('**/client.js')
  await shows(bob.page, 'one')
  await shows(bob.page, 'during the reload')
  await say(ada.page, 'after')
  await shows(bob.page, 'after')
  await bob.page.waitForTimeout(300)

  const expected = [...before, 'during the reload', 'after']
  t.same(await texts(bob.page), expected, 'what the page kept, the rest of the history and what came meanwhile: once each, in order')
  const ids = await shownIds(bob.page)
  t.equal(new Set(ids).size, ids.length, 'each message id once')
  t.equal(await sessionOf(bob.page), session, 'the same session')
  t.same(await lines(bob.page), ['Ada joined', 'You joined', ...expected], 'the joins once, in their place')

  // A new tab of Bob's (it kept nothing: sessionStorage is per tab) shows the same from the history.
  const tab = await openTab(bob.context, chat.url)
  await shows(tab.page, 'after')
  t.same(await texts(tab.page), expected, 'a new tab: the room\'s history')
  t.same([...ada.errors, ...bob.errors, ...tab.errors], [], 'no page errors')
})

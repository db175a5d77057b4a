/**
 * Reloads and tabs in a real browser (Debian's chromium through playwright-core), against the
 * example chat started in-process on 127.0.0.1, port 0, over HTTP/1.1 and over HTTP/2 (TLS with
 * a self-signed certificate; the browser contexts accept it):
 * - a page reloaded during a conversation shows what was said before and during the reload, once
 *   and in order, on the same session (the client's `persist`);
 * - 8 tabs of one browser context are all live and all get every message (the client's
 *   `shared`: one session and one held poll for the browser, within the 6 connections per host
 *   of HTTP/1.1); over HTTP/2 also with one session per tab (`?shared=0`);
 * - the leading tab closes, or is frozen, mid-conversation: the other tabs lose and double nothing.
 */
import t, { type Test } from 'tap'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { enter, launch, newContext, say, startChat, texts, watch, type ChatPage, type ChatServer } from './helpers.js'

let browser: Browser

t.before(async () => {
  browser = await launch()
})
t.teardown(async () => {
  await browser?.close()
})

const delay = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

async function server (t: Test, http2: boolean): Promise<ChatServer> {
  const chat = await startChat({ http2 })
  t.teardown(() => chat.app.close())
  return chat
}

async function person (t: Test, url: string, name: string): Promise<ChatPage> {
  const p = await enter(browser, url, name)
  t.teardown(() => p.context.close())
  return p
}

interface Tab { page: Page, errors: string[] }

/** Another tab of the same browser context: the name is remembered, so it goes straight in. */
async function openTab (context: BrowserContext, url: string): Promise<Tab> {
  const page = await context.newPage()
  const errors = watch(page)
  await page.goto(url)
  return { page, errors }
}

async function live (page: Page, timeout = 10_000): Promise<void> {
  await page.locator('#status[data-state="live"]').waitFor({ timeout })
}

async function shows (page: Page, text: string, timeout = 10_000): Promise<void> {
  await page.locator('#log .msg .text').getByText(text, { exact: true }).waitFor({ timeout })
}

async function role (page: Page): Promise<string | undefined> {
  return await page.locator('#status').getAttribute('data-role') ?? undefined
}

async function shownIds (page: Page): Promise<string[]> {
  return await page.locator('#log .msg').evaluateAll(els => els.map(el => (el as HTMLElement).dataset.id ?? ''))
}

async function sessionOf (page: Page): Promise<string> {
  await page.waitForFunction(() => document.getElementById('me')?.title.startsWith('Session ') === true)
  return (await page.locator('#me').getAttribute('title') ?? '').replace('Session ', '')
}

/** The tab that leads (exactly one), once the group has settled. */
async function leaderOf (tabs: Tab[]): Promise<Tab> {
  for (let i = 0; i < 100; i++) {
    const roles = await Promise.all(tabs.map(x => role(x.page)))
    const leaders = tabs.filter((_, k) => roles[k] === 'leader')
    if (leaders.length === 1 && roles.every(r => r === 'leader' || r === 'follower')) return leaders[0] as Tab
    await delay(100)
  }
  throw new Error('no single leading tab')
}

for (const http2 of [false, true]) {
  const proto = http2 ? 'HTTP/2' : 'HTTP/1.1'

  t.test(`${proto}: a page reloaded during a conversation shows every message once, in order, on the same session`, { timeout: 90_000 }, async (t) => {
    const { url } = await server(t, http2)
    const ada = await person(t, url, 'Ada')
    const bob = await person(t, url, 'Bob')
    await say(ada.page, 'before 1')
    await say(ada.page, 'before 2')
    await shows(bob.page, 'before 2')
    const session = await sessionOf(bob.page)

    // The reloaded page waits for the client script, so that Ada writes while Bob's page is away.
    await bob.context.route('**/client.js', async (route) => {
      await delay(1500)
      await route.continue()
    })
    const reloading = bob.page.reload()
    await delay(300)
    await say(ada.page, 'during 1')
    await say(ada.page, 'during 2')
    await reloading
    await live(bob.page)
    await bob.context.unroute('**/client.js')
    await shows(bob.page, 'during 2')
    await say(ada.page, 'after')
    await shows(bob.page, 'after')
    await bob.page.waitForTimeout(300)

    const expected = ['before 1', 'before 2', 'during 1', 'during 2', 'after']
    t.same(await texts(bob.page), expected, 'before, during and after the reload: once each, in order')
    const ids = await shownIds(bob.page)
    t.equal(new Set(ids).size, ids.length, 'each message id shown once')
    t.equal(await sessionOf(bob.page), session, 'the same session after the reload')
    t.same(await texts(ada.page), expected)
    t.equal(await ada.page.locator('#log .system', { hasText: 'Bob left' }).count(), 0, 'Ada saw Bob neither leave…')
    t.equal(await ada.page.locator('#log .system', { hasText: 'Bob joined' }).count(), 1, '…nor join again')
    t.same([...ada.errors, ...bob.errors], [], 'no page errors')
  })

  t.test(`${proto}: 8 tabs of one browser are all live and all get every message`, { timeout: 120_000 }, async (t) => {
    const chat = await server(t, http2)
    const ada = await person(t, chat.url, 'Ada')
    const tabs: Tab[] = [{ page: ada.page, errors: ada.errors }]
    for (let i = 1; i < 8; i++) tabs.push(await openTab(ada.context, chat.url))
    for (const x of tabs) await live(x.page)
    const leader = await leaderOf(tabs)
    t.equal((await Promise.all(tabs.map(x => role(x.page)))).filter(r => r === 'follower').length, 7, 'one tab leads, 7 follow')
    const bob = await person(t, chat.url, 'Bob')

    for (const text of ['one', 'two', 'three']) await say(bob.page, `Bob: ${text}`)
    for (const x of tabs) await shows(x.page, 'Bob: three', 5000)
    await say((tabs[5] as Tab).page, 'Ada from tab 6')
    for (const x of [...tabs, { page: bob.page }]) await shows(x.page, 'Ada from tab 6', 5000)
    const expected = ['Bob: one', 'Bob: two', 'Bob: three', 'Ada from tab 6']
    for (const [i, x] of tabs.entries()) t.same(await texts(x.page), expected, `tab ${i + 1}: every message once, in order`)

    const members = await chat.app.longPoll.members('lobby')
    t.equal(members.length, 2, 'two sessions in the lobby: Ada\'s 8 tabs share one')
    t.ok((await chat.app.longPoll.stats()).heldPolls <= 2, 'at most one held poll per browser')
    t.ok(tabs.includes(leader))
    t.same(tabs.flatMap(x => x.errors), [], 'no page errors')
  })

  t.test(`${proto}: the leading tab closes mid-conversation; the others lose and double nothing`, { timeout: 90_000 }, async (t) => {
    const chat = await server(t, http2)
    const ada = await person(t, chat.url, 'Ada')
    const tabs: Tab[] = [{ page: ada.page, errors: ada.errors }]
    for (let i = 1; i < 3; i++) tabs.push(await openTab(ada.context, chat.url))
    for (const x of tabs) await live(x.page)
    const bob = await person(t, chat.url, 'Bob')
    const first = await leaderOf(tabs)
    const session = await sessionOf(first.page)

    const sent: string[] = []
    for (let i = 1; i <= 10; i++) {
      sent.push(`Bob ${i}`)
      await say(bob.page, sent.at(-1) as string)
      if (i === 4) await first.page.close()
      await delay(100)
    }
    const rest = tabs.filter(x => x !== first)
    for (const x of rest) await shows(x.page, 'Bob 10')
    const second = await leaderOf(rest)
    t.ok(rest.includes(second), 'another tab leads')
    await delay(300)
    for (const x of rest) {
      t.same(await texts(x.page), sent, 'every message once, in order')
      const ids = await shownIds(x.page)
      t.equal(new Set(ids).size, ids.length)
    }
    t.equal(await sessionOf(second.page), session, 'the same session')
    t.equal((await chat.app.longPoll.members('lobby')).length, 2)
    t.same(rest.flatMap(x => x.errors), [], 'no page errors')
  })
}

/**
 * A frozen leading tab: the page lifecycle's `freeze` event, then no task runs (the debugger
 * holds the page: headless chromium does not freeze a visible page); or, harder, a tab that stops
 * running without a `freeze` (hung, or frozen without the event), which the others notice by the
 * heartbeat and replace by taking its lock. Either way, once it runs again it follows.
 */
for (const announced of [true, false]) {
  const how = announced ? 'freezes (page lifecycle freeze)' : 'stops without a word (no freeze event: the heartbeat finds it)'
  t.test(`HTTP/1.1: a leading tab that ${how} hands over, and catches up when it runs again`, { timeout: 90_000 }, async (t) => {
    const chat = await server(t, false)
    const ada = await person(t, chat.url, 'Ada')
    const tabs: Tab[] = [{ page: ada.page, errors: ada.errors }]
    tabs.push(await openTab(ada.context, chat.url))
    for (const x of tabs) await live(x.page)
    const bob = await person(t, chat.url, 'Bob')
    const first = await leaderOf(tabs)
    const other = tabs.find(x => x !== first) as Tab
    await say(bob.page, 'before the freeze')
    await shows(other.page, 'before the freeze')

    const cdp = await ada.context.newCDPSession(first.page)
    if (announced) await first.page.evaluate(() => document.dispatchEvent(new Event('freeze')))
    await cdp.send('Debugger.enable')
    await cdp.send('Debugger.pause')
    const sent = ['before the freeze']
    for (let i = 1; i <= 4; i++) {
      sent.push(`while frozen ${i}`)
      await say(bob.page, sent.at(-1) as string)
      await delay(200)
    }
    await other.page.locator('#status[data-role="leader"]').waitFor({ timeout: 10_000 })
    await shows(other.page, 'while frozen 4')
    await cdp.send('Debugger.resume')
    if (announced) await first.page.evaluate(() => document.dispatchEvent(new Event('resume')))
    await shows(first.page, 'while frozen 4')
    sent.push('after')
    await say(bob.page, 'after')
    for (const x of tabs) await shows(x.page, 'after')
    await delay(300)
    for (const x of tabs) t.same(await texts(x.page), sent, 'every message once, in order')
    t.equal(await role(first.page), 'follower', 'the tab that was frozen follows')
    t.equal(await role(other.page), 'leader')
    t.equal((await chat.app.longPoll.members('lobby')).length, 2, 'one session for Ada\'s tabs')
    // Unannounced, the tab that wakes may poll once before it learns that it lost the lead: the
    // server then answers the new leader's held poll with 409 (which the browser logs), and the
    // new leader polls again. Nothing else may appear.
    const allowed = (e: string): boolean => !announced && e.includes('409 (Conflict)')
    t.same(tabs.flatMap(x => x.errors).filter(e => !allowed(e)), [], 'no page errors')
  })
}

t.test('HTTP/2: 8 tabs with a session each (?shared=0) are all live: no per-host connection limit', { timeout: 120_000 }, async (t) => {
  const chat = await server(t, true)
  const context = await newContext(browser)
  t.teardown(() => context.close())
  const first = await context.newPage()
  const errors = watch(first)
  await first.goto(`${chat.url}/?shared=0`)
  await first.getByLabel('Your name').fill('Ada')
  await first.getByRole('button', { name: 'Enter the chat' }).click()
  const tabs: Tab[] = [{ page: first, errors }]
  for (let i = 1; i < 8; i++) tabs.push(await openTab(context, `${chat.url}/?shared=0`))
  for (const x of tabs) await live(x.page)
  t.same(await Promise.all(tabs.map(x => role(x.page))), new Array(8).fill('single'), 'every tab polls for itself')
  for (let i = 0; i < 100 && (await chat.app.longPoll.stats()).heldPolls < 8; i++) await delay(50)
  t.equal((await chat.app.longPoll.stats()).heldPolls, 8, '8 polls held at once over one connection')
  await chat.app.longPoll.broadcast({ text: 'to every tab', name: 'Server' })
  for (const x of tabs) {
    await x.page.locator('#rooms button', { hasText: 'Announcements' }).click()
    await shows(x.page, 'to every tab', 5000)
  }
  t.same(tabs.flatMap(x => x.errors), [])
})

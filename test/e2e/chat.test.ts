/**
 * The example chat in a real browser (Debian's chromium through playwright-core), against the
 * example server started in-process on 127.0.0.1, port 0. Run with `npm run test:e2e` (it builds
 * the browser client first). Screenshots go to test-results/ (gitignored); with
 * UPDATE_SCREENSHOT=1 the README screenshot examples/chat/screenshot.png is taken again too.
 */
import t, { type Test } from 'tap'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { enter, launch, RESULTS, say, startChat, texts, type ChatPage } from './helpers.js'

let browser: Browser

t.before(async () => {
  browser = await launch()
})
t.teardown(async () => {
  await browser?.close()
})

async function server (t: Test, pollTimeout = 25_000): Promise<string> {
  const chat = await startChat({ chat: { pollTimeout } })
  t.teardown(() => chat.app.close())
  return chat.url
}

async function page (t: Test, url: string, name: string, viewport?: { width: number, height: number }): Promise<ChatPage> {
  const p = await enter(browser, url, name, viewport)
  t.teardown(() => p.context.close())
  return p
}

/** Waits until the open conversation shows a message with this exact text. */
async function shows (page: Page, text: string): Promise<void> {
  await page.locator('#log .msg .text').getByText(text, { exact: true }).waitFor()
}

async function membersOf (page: Page): Promise<string[]> {
  return (await page.locator('#members .label, #members .you').allTextContents()).map(s => s.trim()).sort()
}

async function shot (page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(RESULTS, name) })
}

t.test('two pages join a room and chat both ways; members follow joins and leaves', { timeout: 60_000 }, async (t) => {
  const url = await server(t)
  const ada = await page(t, url, 'Ada')
  const bob = await page(t, url, 'Bob')

  for (const p of [ada, bob]) {
    await p.page.getByLabel('Join a room').fill('den')
    await p.page.getByRole('button', { name: 'Join', exact: true }).click()
    await p.page.locator('#conv-title', { hasText: '#den' }).waitFor()
  }
  await ada.page.locator('#members button[data-member]', { hasText: 'Bob' }).waitFor()
  t.same(await membersOf(ada.page), ['Ada (you)', 'Bob'].sort(), 'Ada sees Bob join #den')
  await ada.page.locator('#log .system', { hasText: 'Bob joined' }).waitFor()

  await say(ada.page, 'Hi Bob, welcome to the den.')
  await shows(bob.page, 'Hi Bob, welcome to the den.')
  await say(bob.page, 'Thanks Ada! Cosy in here.')
  await shows(ada.page, 'Thanks Ada! Cosy in here.')
  const markup = '<img src=x onerror="document.title=\'pwned\'"> <b>bold?</b>'
  await say(bob.page, markup)
  await shows(ada.page, markup)
  t.equal(await ada.page.locator('#log img, #log b').count(), 0, 'user text is shown as text, never as HTML')
  t.not(await ada.page.title(), 'pwned')

  const expected = ['Hi Bob, welcome to the den.', 'Thanks Ada! Cosy in here.', markup]
  t.same(await texts(ada.page), expected, 'Ada: both ways, in order')
  t.same(await texts(bob.page), expected, 'Bob: the same order')
  t.same(await ada.page.locator('#log .msg.mine .text').allTextContents(), [expected[0]], 'own message marked as mine')
  await shot(ada.page, 'e2e-room-ada.png')

  await bob.page.getByRole('button', { name: 'Leave #den' }).click()
  await ada.page.locator('#log .system', { hasText: 'Bob left' }).waitFor()
  await ada.page.locator('#members button[data-member]').waitFor({ state: 'detached' })
  t.same(await membersOf(ada.page), ['Ada (you)'], 'Bob left the member list')
  await bob.page.locator('#conv-title', { hasText: '#lobby' }).waitFor()
  t.same([...ada.errors, ...bob.errors], [], 'no page errors')
})

t.test('a page offline for a few seconds gets every message, in order, once', { timeout: 60_000 }, async (t) => {
  const url = await server(t, 2000)
  const ada = await page(t, url, 'Ada')
  const bob = await page(t, url, 'Bob', { width: 390, height: 780 })
  await say(ada.page, 'before the tunnel')
  await shows(bob.page, 'before the tunnel')

  let requestsWhileOffline = 0
  let offline = false
  bob.page.on('request', (req) => { if (offline && req.url().includes('/chat/')) requestsWhileOffline++ })
  offline = true
  await bob.context.setOffline(true)
  // The held poll ends within pollTimeout (2 s); the next one fails and the page says so.
  await bob.page.locator('#status[data-state="retrying"]').waitFor({ timeout: 10_000 })
  await bob.page.locator('[data-notice="retrying"]').waitFor()
  await shot(bob.page, 'e2e-offline-bob.png')

  const sent: string[] = []
  for (let i = 1; i <= 6; i++) {
    sent.push(`in the tunnel ${i}`)
    await say(ada.page, sent.at(-1) as string)
    await ada.page.waitForTimeout(400)
  }
  t.same(await texts(bob.page), ['before the tunnel'], 'nothing arrives while offline')
  offline = false
  await bob.context.setOffline(false)
  t.ok(requestsWhileOffline <= 15, `no tight loop: ${requestsWhileOffline} requests in about 4 s offline`)

  await shows(bob.page, sent.at(-1) as string)
  await bob.page.locator('#status[data-state="live"]').waitFor()
  await bob.page.locator('[data-notice="retrying"]').waitFor({ state: 'detached' })
  await bob.page.waitForTimeout(500)
  t.same(await texts(bob.page), ['before the tunnel', ...sent], 'every message, in order, no duplicates')
  const ids = await bob.page.locator('#log .msg').evaluateAll(els => els.map(el => (el as HTMLElement).dataset.id))
  t.equal(new Set(ids).size, ids.length, 'each message id shown once')
  t.same(await texts(ada.page), ['before the tunnel', ...sent])
  await shot(bob.page, 'e2e-back-online-bob.png')
  t.same(ada.errors, [])
  t.same(bob.errors.filter(e => !e.includes('ERR_INTERNET_DISCONNECTED')), [], 'no errors but the offline requests')
})

t.test('a direct message reaches only its addressee', { timeout: 60_000 }, async (t) => {
  const chat = await startChat()
  t.teardown(() => chat.app.close())
  const url = chat.url
  const ada = await page(t, url, 'Ada')
  const bob = await page(t, url, 'Bob')
  const grace = await page(t, url, 'Grace')
  await bob.page.locator('#members button[data-member]', { hasText: 'Grace' }).waitFor()

  await say(ada.page, 'Hello everyone! This chat runs on plain HTTP long-polling.')
  await say(bob.page, 'No WebSockets, and nothing is lost when my train goes through a tunnel.')
  await say(grace.page, 'Messages wait in my mailbox until my next poll acknowledges them.')
  await shows(ada.page, 'Messages wait in my mailbox until my next poll acknowledges them.')
  // A message of the server itself (for the README's screenshot: its badge).
  await chat.app.longPoll.broadcast({ text: 'The lobby keeps its last hour: whoever comes later reads it too.' }, { room: 'lobby' })
  await shows(ada.page, 'The lobby keeps its last hour: whoever comes later reads it too.')

  await bob.page.getByRole('button', { name: 'Write to Ada privately' }).click()
  await bob.page.locator('#conv-title', { hasText: 'Ada' }).waitFor()
  await say(bob.page, 'Lunch at noon? (just us)')
  await shows(bob.page, 'Lunch at noon? (just us)')

  // Ada: a direct conversation with Bob appears with one unread message.
  const dm = ada.page.locator('#dms button', { hasText: 'Bob' })
  await dm.locator('.badge', { hasText: '1' }).waitFor()
  await ada.page.waitForTimeout(300)
  await shot(ada.page, 'e2e-dm-unread-ada.png')
  if (process.env.UPDATE_SCREENSHOT === '1') {
    copyFileSync(join(RESULTS, 'e2e-dm-unread-ada.png'), join(__dirname, '..', '..', 'examples', 'chat', 'screenshot.png'))
  }
  t.notOk((await texts(ada.page)).includes('Lunch at noon? (just us)'), 'not in the room conversation')
  await dm.click()
  await shows(ada.page, 'Lunch at noon? (just us)')
  t.same(await texts(ada.page), ['Lunch at noon? (just us)'])
  await say(ada.page, 'Sure!')
  await shows(bob.page, 'Sure!')

  // Grace got neither: no direct conversation, and the text is nowhere on her page.
  await grace.page.waitForTimeout(500)
  t.equal(await grace.page.locator('#dms button').count(), 0, 'Grace has no direct conversation')
  const body = await grace.page.locator('body').innerText()
  t.notOk(body.includes('Lunch at noon'), 'the direct message is nowhere on Grace\'s page')
  t.notOk(body.includes('Sure!'), 'nor the answer')
  t.same([...ada.errors, ...bob.errors, ...grace.errors], [], 'no page errors')
})

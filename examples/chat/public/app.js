/**
 * The example chat page. It uses the package's client (the browser build, served at /client.js)
 * and nothing else. Every piece of user text is put on the page with textContent, never as HTML.
 *
 * Reloads and tabs: the client keeps its session in sessionStorage (`persist`) and the tabs of
 * this browser share one session and one held poll (`shared`; `?shared=0` in the address turns
 * that off, to compare). The page keeps what it showed (the last messages, `transcript`) in
 * sessionStorage too and shows it again after a reload through `showPast`, the same function
 * that shows a room's history from the server (`chat.history()`, or `chat.join()` with
 * `history`); messages are shown once each (by id), in order, whichever way they came.
 *
 * People: the server makes every page of one browser one person (a cookie) and stamps each
 * profile and message with the name and a public `person` id, so the member lists show a person
 * once, and a direct message goes to the person (`toUser`): all their pages get it.
 * #announcements is read-only: only the server posts there, and its messages (`from: null`)
 * carry a "Server" badge that no person can have, whatever name they chose.
 */
import { createChatClient } from '/client.js'

const DEFAULT_ROOM = 'lobby'
/** Every session is in it (the server puts it there); only the server posts to it. */
const ANNOUNCEMENTS = 'announcements'
/** Messages of a room's history shown when entering it (the server's page size). */
const HISTORY_PAGE = 50
/** Entries kept per conversation (older ones scroll away for good). */
const MAX_ENTRIES = 500
/** Messages kept for the next reload of this tab. */
const MAX_TRANSCRIPT = 300
const TRANSCRIPT_KEY = 'chat-transcript'
const SHARED = new URLSearchParams(window.location.search).get('shared') !== '0'

const byId = (id) => document.getElementById(id)
const ui = {
  status: byId('status'),
  me: byId('me'),
  welcome: byId('welcome'),
  nameForm: byId('name-form'),
  name: byId('name'),
  chat: byId('chat'),
  rooms: byId('rooms'),
  joinForm: byId('join-form'),
  roomName: byId('room-name'),
  dms: byId('dms'),
  dmsEmpty: byId('dms-empty'),
  membersRoom: byId('members-room'),
  members: byId('members'),
  convTitle: byId('conv-title'),
  sidebar: byId('sidebar'),
  toggleSidebar: byId('toggle-sidebar'),
  leave: byId('leave'),
  notices: byId('notices'),
  log: byId('log'),
  composer: byId('composer'),
  readOnly: byId('read-only'),
  text: byId('text'),
  textLabel: byId('text-label'),
  sendError: byId('send-error'),
  signOut: byId('sign-out')
}

/** @type {import('../../../lib/client/index.js').ChatClient<{ text: string, name: string, person: string | null }, { name: string, person: string }> | null} */
let chat = null
let myName = ''
/** This browser's public person id (from our own profile, once the server's copy of it is seen). */
let myPerson = null
/**
 * key → { key, kind, target, label, entries, unread, history }: 'room:NAME' (target: the room)
 * or 'dm:PERSON' (target: a session id of the person, to write to them with `toUser`).
 * `history`: 'none', 'loading' or 'done' (the room's history was shown).
 */
const conversations = new Map()
/** room → Map(session id → { name, person }) */
const roomMembers = new Map()
/** session id → { name, person }, learned from messages and member lists */
const people = new Map()
let active = null
/** The room whose members the sidebar shows (the last room opened). */
let shownRoom = DEFAULT_ROOM
let missedTotal = 0
const refreshTimers = new Map()
/** Ids of the messages on the page (a message shown once, whether it came live or from the past). */
const shownIds = new Set()
/** The last messages shown, oldest first, as the wire has them: kept for the next reload. */
let transcript = []
let transcriptDirty = false
/** While `showPast` runs: the keys of the conversations it changed (rendered once at the end). */
let batch = null

/* ---------------------------------------------------------------------------------------- */
/* Conversations and rendering                                                               */
/* ---------------------------------------------------------------------------------------- */

const roomKey = (room) => `room:${room}`
const personKey = (person, sessionId) => `dm:${person ?? sessionId}`
const isAnnouncements = (conv) => conv.kind === 'room' && conv.target === ANNOUNCEMENTS

function roomConversation (room) {
  return conversation(roomKey(room), 'room', room, undefined)
}

/** The direct conversation with a person; `sessionId` (one of their sessions) is where we write. */
function dmConversation (person, sessionId, name) {
  const conv = conversation(personKey(person, sessionId), 'dm', sessionId, name)
  if (sessionId !== null && sessionId !== undefined) conv.target = sessionId
  return conv
}

function conversation (key, kind, target, label) {
  let conv = conversations.get(key)
  if (conv === undefined) {
    conv = { key, kind, target, label, entries: [], unread: 0, history: kind === 'room' ? 'none' : 'done' }
    conversations.set(key, conv)
    renderNav()
  } else if (label !== undefined && conv.label !== label) {
    conv.label = label
    renderNav()
  }
  return conv
}

function titleOf (conv) {
  if (isAnnouncements(conv)) return 'Announcements'
  if (conv.kind === 'room') return `#${conv.target}`
  return conv.label
}

/**
 * Puts an entry into its conversation. Live entries go at the end (or by time, if older);
 * entries of the past (`past`) go after `after` (the id of the message before them where they
 * came from, when it is in this conversation) and after every entry that is older than them.
 */
function addEntry (conv, entry, past = false, after = null) {
  const list = conv.entries
  const last = list[list.length - 1]
  if (past || (last !== undefined && entry.ts < last.ts)) {
    let i
    if (past) {
      i = after === null ? 0 : list.findIndex(e => e.id === after) + 1
      while (i < list.length && list[i].ts < entry.ts) i++
    } else {
      i = list.length
      while (i > 0 && list[i - 1].ts > entry.ts) i--
    }
    list.splice(i, 0, entry)
    if (list.length > MAX_ENTRIES) list.splice(0, list.length - MAX_ENTRIES)
    if (conv.key === active) {
      if (batch !== null) batch.add(conv.key)
      else renderLog()
    }
    return
  }
  list.push(entry)
  if (list.length > MAX_ENTRIES) list.splice(0, list.length - MAX_ENTRIES)
  if (conv.key === active) {
    const atBottom = ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 48
    ui.log.querySelector('.empty')?.remove()
    ui.log.append(entryElement(entry))
    while (ui.log.children.length > MAX_ENTRIES) ui.log.firstElementChild.remove()
    if (atBottom || entry.mine) ui.log.scrollTop = ui.log.scrollHeight
  } else if (!entry.system) {
    conv.unread++
    renderNav()
  }
}

function formatTime (ts) {
  return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
}

function entryElement (entry) {
  const li = document.createElement('li')
  if (entry.system) {
    li.className = 'system'
    li.textContent = entry.text
    return li
  }
  li.className = entry.server ? 'msg server' : (entry.mine ? 'msg mine' : 'msg')
  li.dataset.id = entry.id
  const meta = document.createElement('div')
  meta.className = 'meta'
  const author = document.createElement('span')
  if (entry.server) {
    // Only a message whose `from` is null gets this: the server stamps `from`, no client can.
    author.className = 'server-badge'
    author.textContent = 'Server'
    author.title = 'Sent by the server itself: no person can post with this mark'
    const note = document.createElement('span')
    note.className = 'visually-hidden'
    note.textContent = '(a message of the server itself)'
    meta.append(author, note)
  } else {
    author.className = 'author'
    author.textContent = entry.mine ? 'You' : entry.name
    meta.append(author)
  }
  const time = document.createElement('time')
  time.dateTime = new Date(entry.ts).toISOString()
  time.textContent = formatTime(entry.ts)
  meta.append(time)
  const text = document.createElement('p')
  text.className = 'text'
  text.textContent = entry.text
  li.append(meta, text)
  return li
}

function renderLog () {
  const conv = conversations.get(active)
  ui.log.replaceChildren()
  if (conv === undefined) return
  for (const entry of conv.entries) ui.log.append(entryElement(entry))
  if (!conv.entries.some(e => !e.system)) {
    const empty = document.createElement('li')
    empty.className = 'empty'
    empty.textContent = conv.kind === 'dm'
      ? `Only ${conv.label} will see what you write here.`
      : (isAnnouncements(conv) ? 'No announcements yet.' : 'No messages yet. Say hello!')
    ui.log.append(empty)
  }
  ui.log.scrollTop = ui.log.scrollHeight
}

function navButton (conv) {
  const li = document.createElement('li')
  const button = document.createElement('button')
  button.type = 'button'
  button.dataset.key = conv.key
  if (conv.key === active) button.setAttribute('aria-current', 'true')
  if (conv.kind === 'dm') button.append(avatar(conv.label))
  const label = document.createElement('span')
  label.className = 'label'
  label.textContent = titleOf(conv)
  button.append(label)
  if (conv.unread > 0) {
    const badge = document.createElement('span')
    badge.className = 'badge'
    badge.textContent = String(conv.unread)
    badge.setAttribute('aria-label', `${conv.unread} unread`)
    button.append(badge)
  }
  button.addEventListener('click', () => open(conv.key))
  li.append(button)
  return li
}

function renderNav () {
  const all = [...conversations.values()]
  // Announcements first, then the rooms in the order they were joined.
  const rooms = all.filter(c => c.kind === 'room').sort((a, b) => Number(isAnnouncements(b)) - Number(isAnnouncements(a)))
  const dms = all.filter(c => c.kind === 'dm')
  ui.rooms.replaceChildren(...rooms.map(navButton))
  ui.dms.replaceChildren(...dms.map(navButton))
  ui.dmsEmpty.hidden = dms.length > 0
}

function avatar (name) {
  const span = document.createElement('span')
  span.className = 'avatar'
  span.setAttribute('aria-hidden', 'true')
  span.textContent = (name.trim()[0] ?? '?').toUpperCase()
  let hue = 0
  for (const ch of name) hue = (hue * 31 + ch.codePointAt(0)) % 360
  span.style.background = `hsl(${hue} 45% 30%)`
  return span
}

/** Whether a session is this browser's (this tab's, or another page of this person). */
function isMe (sessionId, person) {
  return sessionId === chat?.id || (person !== null && person !== undefined && person === myPerson)
}

/** The shown room's members, one entry per person (a person's pages are several sessions). */
function renderMembers () {
  const members = roomMembers.get(shownRoom)
  const conv = conversations.get(roomKey(shownRoom))
  ui.membersRoom.textContent = conv === undefined ? 'no room' : titleOf(conv)
  const persons = new Map()
  for (const [id, who] of members ?? new Map()) {
    const key = who.person ?? id
    const seen = persons.get(key)
    // This tab's own session wins (it is "you"); otherwise the last one joined, to write to.
    if (seen === undefined || seen.id !== chat?.id) persons.set(key, { id, ...who })
  }
  const items = []
  for (const who of [...persons.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const li = document.createElement('li')
    if (isMe(who.id, who.person)) {
      const you = document.createElement('span')
      you.className = 'you'
      you.textContent = `${who.name} (you)`
      li.append(you)
    } else {
      const button = document.createElement('button')
      button.type = 'button'
      button.dataset.member = who.id
      button.title = `Write to ${who.name} privately`
      button.setAttribute('aria-label', `Write to ${who.name} privately`)
      const label = document.createElement('span')
      label.className = 'label'
      label.textContent = who.name
      button.append(avatar(who.name), label)
      button.addEventListener('click', () => open(dmConversation(who.person, who.id, who.name).key))
      li.append(button)
    }
    items.push(li)
  }
  ui.members.replaceChildren(...items)
}

function open (key) {
  const conv = conversations.get(key)
  if (conv === undefined) return
  active = key
  conv.unread = 0
  if (conv.kind === 'room') shownRoom = conv.target
  const readOnly = isAnnouncements(conv)
  ui.convTitle.textContent = titleOf(conv)
  ui.textLabel.textContent = conv.kind === 'dm' ? `Private message to ${conv.label}` : `Message to ${titleOf(conv)}`
  ui.leave.hidden = conv.kind !== 'room' || readOnly
  ui.leave.setAttribute('aria-label', `Leave ${titleOf(conv)}`)
  // Only the server posts to #announcements: no composer there (the server would refuse: 403).
  ui.composer.hidden = readOnly
  ui.readOnly.hidden = !readOnly
  ui.sendError.hidden = true
  renderNav()
  renderLog()
  renderMembers()
  if (conv.kind === 'room' && chat !== null && chat.id !== null) {
    loadHistory(conv)
    refreshMembers(conv.target, 0)
  }
  if (ui.sidebar.classList.contains('open')) {
    showSidebar(false)
    if (!readOnly) ui.text.focus()
  }
}

/** On phones the sidebar folds away above the conversation (the toggle is hidden on wide screens). */
function showSidebar (show) {
  ui.sidebar.classList.toggle('open', show)
  ui.toggleSidebar.setAttribute('aria-expanded', String(show))
}

/* ---------------------------------------------------------------------------------------- */
/* Notices and status                                                                        */
/* ---------------------------------------------------------------------------------------- */

function notice (id, text, dismissible = true) {
  let box = ui.notices.querySelector(`[data-notice="${id}"]`)
  if (box === null) {
    box = document.createElement('div')
    box.className = 'notice'
    box.dataset.notice = id
    box.setAttribute('role', 'status')
    box.append(document.createElement('p'))
    if (dismissible) {
      const close = document.createElement('button')
      close.type = 'button'
      close.textContent = 'Dismiss'
      close.addEventListener('click', () => {
        box.remove()
        if (id === 'missed') missedTotal = 0
      })
      box.append(close)
    }
    ui.notices.append(box)
  }
  box.querySelector('p').textContent = text
}

function clearNotice (id) {
  ui.notices.querySelector(`[data-notice="${id}"]`)?.remove()
}

function setStatus (state, text) {
  ui.status.dataset.state = state
  ui.status.textContent = text
}

/* ---------------------------------------------------------------------------------------- */
/* The client's events                                                                       */
/* ---------------------------------------------------------------------------------------- */

function members (room) {
  let map = roomMembers.get(room)
  if (map === undefined) {
    map = new Map()
    roomMembers.set(room, map)
  }
  return map
}

/** What a profile (or a message's stamped data) says of its person. */
function whoFrom (data) {
  return {
    name: typeof data?.name === 'string' ? data.name : 'someone',
    person: typeof data?.person === 'string' ? data.person : null
  }
}

/** Someone's session: remembered by id (and our own person, once the server's profile shows it). */
function learn (sessionId, who) {
  if (sessionId === null) return
  people.set(sessionId, who)
  if (sessionId === chat?.id && who.person !== null && myPerson !== who.person) {
    myPerson = who.person
    renderMembers()
  }
}

/**
 * Re-reads the shown room's member list shortly after a change (join/leave notices keep every
 * room's list live meanwhile; a room's list is read again when it is shown).
 */
function refreshMembers (room, delayMs = 250) {
  clearTimeout(refreshTimers.get(room))
  refreshTimers.set(room, setTimeout(async () => {
    refreshTimers.delete(room)
    if (chat === null || room !== shownRoom || !conversations.has(roomKey(room))) return
    // Tabs in the background do not ask (one browser may have many); they ask when shown again.
    if (document.visibilityState === 'hidden') return
    try {
      const list = await chat.members(room)
      const map = new Map()
      for (const m of list) {
        const who = whoFrom(m.profile)
        map.set(m.id, who)
        learn(m.id, who)
      }
      roomMembers.set(room, map)
      if (room === shownRoom) renderMembers()
    } catch {
      // Not a member any more, or offline: the join/leave notices keep the list meanwhile.
    }
  }, delayMs))
}

/** Shows the room's recent history once per page (entering it, or after a reload); tried again on the next open if it failed. */
async function loadHistory (conv) {
  if (chat === null || conv.kind !== 'room' || conv.history !== 'none') return
  conv.history = 'loading'
  try {
    const page = await chat.history(conv.target, { limit: HISTORY_PAGE })
    conv.history = 'done'
    showPast(page.messages)
  } catch (err) {
    conv.history = 'none'
    if (err?.code === 'LONGPOLL_RATE_LIMITED' && active === conv.key) {
      setTimeout(() => { if (active === conv.key) loadHistory(conv) }, err.retryAfterMs ?? 1000)
    }
  }
}

/** The page's own copy of a message (live, past, or our own direct message): kept for a reload. */
function remember (m) {
  transcript.push(m)
  if (transcript.length > MAX_TRANSCRIPT) transcript.splice(0, transcript.length - MAX_TRANSCRIPT)
  if (!transcriptDirty) {
    transcriptDirty = true
    queueMicrotask(saveTranscript)
  }
}

function saveTranscript () {
  transcriptDirty = false
  try { sessionStorage.setItem(TRANSCRIPT_KEY, JSON.stringify(transcript)) } catch {}
}

/**
 * Puts a message on the page once, in its conversation. `live`: it just arrived (members follow
 * it); else it is from the past, and `after` is the id of the message before it where it came from.
 */
function show (m, live, after = null) {
  if (shownIds.has(m.id)) return
  shownIds.add(m.id)
  remember(m)
  if (m.type === 'join' || m.type === 'leave') {
    const who = whoFrom(m.data)
    learn(m.from, who)
    if (m.room === null) return
    if (live) {
      const list = members(m.room)
      if (m.type === 'join') list.set(m.from, who)
      else list.delete(m.from)
    }
    // Our own join may arrive before join() resolves: the room's conversation starts with it.
    const conv = m.type === 'join' && m.from === chat.id ? roomConversation(m.room) : conversations.get(roomKey(m.room))
    // In #announcements (everyone is in it) nobody's coming and going is news.
    if (conv !== undefined && !isAnnouncements(conv)) {
      const name = isMe(m.from, who.person) ? 'You' : who.name
      addEntry(conv, { id: m.id, system: true, ts: m.ts, text: `${name} ${m.type === 'join' ? 'joined' : 'left'}` }, !live, after)
    }
    if (live && m.room === shownRoom) {
      renderMembers()
      refreshMembers(m.room)
    }
    return
  }
  const text = typeof m.data?.text === 'string' ? m.data.text : JSON.stringify(m.data)
  // The server's messages have from: null, which no client can send: they get the Server badge.
  const server = m.from === null
  const who = server ? { name: 'Server', person: null } : whoFrom(m.data)
  learn(m.from, who)
  // Our own copy of a direct message we sent carries whom we wrote to (`peer`); the wire has no such field.
  const own = m.peer !== undefined
  const mine = own || (!server && isMe(m.from, who.person))
  let conv
  if (m.room !== null) {
    conv = roomConversation(m.room)
  } else if (m.to !== null && !server) {
    // A direct message: the conversation with the other person.
    conv = own ? dmConversation(m.peer.person, m.to, m.peer.name) : dmConversation(who.person, m.from, who.name)
  } else {
    // To everyone, or to us from the server: only the server may do either; it goes with its announcements.
    conv = roomConversation(ANNOUNCEMENTS)
  }
  addEntry(conv, { id: m.id, ts: m.ts, name: who.name, text, mine, server }, !live, after)
}

function onMessage (m) {
  show(m, true)
}

/**
 * Shows messages of the past, oldest first, each once: the transcript this tab kept before a
 * reload, and a room's history from the server (`chat.history()`, or `chat.join()` with
 * `history`). Messages already on the page are skipped; the others go into their place, after
 * the message before them, so the order is the server's.
 */
export function showPast (messages) {
  batch = new Set()
  let after = null
  try {
    for (const m of messages) {
      if (typeof m?.id !== 'string' || typeof m.type !== 'string') continue
      show(m, false, after)
      after = m.id
    }
  } finally {
    const changed = batch
    batch = null
    if (changed.has(active)) renderLog()
  }
}

const STATUS_TEXT = { connecting: 'Connecting…', live: 'Live', retrying: 'Reconnecting…', closed: 'Disconnected' }

function onState ({ state, reason }) {
  setStatus(state, STATUS_TEXT[state])
  if (state === 'live') clearNotice('retrying')
  if (state === 'closed') {
    clearNotice('retrying')
    // The session is over: a reload starts afresh, without the old conversation.
    transcript = []
    try { sessionStorage.removeItem(TRANSCRIPT_KEY) } catch {}
    const why = {
      superseded: 'This chat was opened again elsewhere with the same session; this page stopped. Reload to start a new session.',
      refused: 'The server refused to let this page in. Reload to try again.',
      closed: 'Disconnected. Reload the page to chat again.'
    }
    notice('closed', why[reason] ?? why.closed, false)
    ui.composer.querySelector('button').disabled = true
  }
}

function onRetrying ({ delayMs }) {
  const seconds = Math.max(1, Math.round(delayMs / 1000))
  setStatus('retrying', `Reconnecting in ${seconds} s…`)
  notice('retrying', 'The connection is down. Retrying by itself; messages sent to you meanwhile wait on the server.', false)
}

function onMissed ({ count }) {
  missedTotal += count
  notice('missed', `${missedTotal} message${missedTotal === 1 ? '' : 's'} could not be delivered to you: they expired or your mailbox overflowed while you were away.`)
}

function onSession ({ id, previousId }) {
  ui.me.title = `Session ${id}`
  if (previousId !== null) {
    notice('session', 'The server had forgotten this session (a restart, or a long absence). You are back with a new session; messages sent to the old one were lost.')
    refreshMembers(shownRoom, 0)
  }
}

/* ---------------------------------------------------------------------------------------- */
/* User actions                                                                              */
/* ---------------------------------------------------------------------------------------- */

function describeError (err) {
  switch (err?.code) {
    case 'LONGPOLL_RATE_LIMITED': return `Too fast: wait ${Math.ceil((err.retryAfterMs ?? 1000) / 1000)} s and send again.`
    case 'LONGPOLL_NO_SUCH_SESSION': return 'They have left: the message was not delivered.'
    case 'LONGPOLL_NOT_A_MEMBER': return 'Join the room first.'
    case 'LONGPOLL_FORBIDDEN': return 'The server does not allow that.'
    case 'LONGPOLL_MESSAGE_TOO_LARGE': return 'The message is too long.'
    case 'LONGPOLL_BAD_MESSAGE': return 'The server refused this message.'
    case 'LONGPOLL_CLIENT_NETWORK':
    case 'LONGPOLL_CLIENT_TIMEOUT': return 'Not sent: the connection is down. Send it again when it is back.'
    case 'LONGPOLL_CLIENT_CLOSED': return 'Not sent: the chat is disconnected.'
    default: return `Not sent: ${err?.message ?? err}`
  }
}

/** The person of a direct conversation (or the session id it was started with, for a session without one). */
const personOf = (conv) => conv.key.slice('dm:'.length)

/**
 * A direct message goes to the person (`toUser` with one of their sessions): every page they
 * have open gets it. If the session we knew has ended (that page closed), another one we know
 * of the same person will do.
 */
async function sendToPerson (conv, text) {
  const tried = new Set()
  for (;;) {
    tried.add(conv.target)
    try {
      return await chat.send({ text }, { toUser: conv.target })
    } catch (err) {
      const other = [...people].reverse().find(([id, who]) => who.person === personOf(conv) && !tried.has(id))
      if (err?.code !== 'LONGPOLL_NO_SUCH_SESSION' || other === undefined) throw err
      conv.target = other[0]
    }
  }
}

async function sendCurrent () {
  const conv = conversations.get(active)
  const text = ui.text.value.trim()
  if (conv === undefined || chat === null || text === '' || isAnnouncements(conv)) return
  const button = ui.composer.querySelector('button')
  button.disabled = true
  ui.sendError.hidden = true
  try {
    const sent = conv.kind === 'room' ? await chat.send({ text }, { room: conv.target }) : await sendToPerson(conv, text)
    ui.text.value = ''
    // Direct messages go to the addressee alone: show our own copy here (kept like the others).
    if (conv.kind === 'dm') {
      const peer = { name: conv.label, person: personOf(conv) }
      show({ id: sent.id, type: 'message', from: chat.id, room: null, to: conv.target, toUser: true, data: { text, name: myName, person: myPerson }, ts: sent.ts, peer }, true)
    }
  } catch (err) {
    ui.sendError.textContent = describeError(err)
    ui.sendError.hidden = false
  } finally {
    button.disabled = chat.state === 'closed'
    ui.text.focus()
  }
}

async function joinRoom (room) {
  ui.sendError.hidden = true
  try {
    // The room's recent messages come with the join; what follows arrives as messages.
    const past = await chat.join(room, { history: HISTORY_PAGE })
    const conv = roomConversation(room)
    conv.history = 'done'
    showPast(past)
    open(conv.key)
  } catch (err) {
    ui.sendError.textContent = `Could not join #${room}: ${describeError(err)}`
    ui.sendError.hidden = false
  }
}

async function leaveRoom (room) {
  try {
    await chat.leave(room)
  } catch (err) {
    ui.sendError.textContent = `Could not leave #${room}: ${describeError(err)}`
    ui.sendError.hidden = false
    return
  }
  // Forget the room: its messages are not shown again after a reload, and joining it again shows its history afresh.
  for (const entry of conversations.get(roomKey(room))?.entries ?? []) shownIds.delete(entry.id)
  transcript = transcript.filter(m => m.room !== room)
  saveTranscript()
  conversations.delete(roomKey(room))
  roomMembers.delete(room)
  const next = [...conversations.values()].find(c => c.kind === 'room' && !isAnnouncements(c)) ?? [...conversations.values()][0]
  if (next !== undefined) {
    open(next.key)
  } else {
    active = null
    shownRoom = ''
    ui.convTitle.textContent = 'No room'
    ui.leave.hidden = true
    ui.composer.hidden = true
    renderNav()
    renderLog()
    renderMembers()
  }
}

const ROLE_TEXT = {
  leader: 'This tab holds the connection for the other tabs of this browser.',
  follower: 'Another tab of this browser holds the connection; this one gets the messages from it.',
  single: 'This tab has its own connection.'
}

function showRole () {
  ui.status.dataset.role = chat.role
  ui.status.title = ROLE_TEXT[chat.role]
}

function start (name) {
  myName = name
  try { localStorage.setItem('chat-name', name) } catch {}
  // The session survives reloads (sessionStorage) and is shared by the tabs of this browser.
  chat = createChatClient({ url: '/chat', profile: { name }, rooms: [DEFAULT_ROOM], persist: 'session', shared: SHARED })
  chat.on('message', onMessage)
  chat.on('state', onState)
  chat.on('retrying', onRetrying)
  chat.on('missed', onMissed)
  chat.on('session', onSession)
  chat.on('role', showRole)
  setStatus('connecting', STATUS_TEXT.connecting)
  showRole()
  ui.welcome.hidden = true
  ui.chat.hidden = false
  ui.me.hidden = false
  ui.me.textContent = `Signed in as ${myName}`
  ui.signOut.hidden = false
  // The server puts every session in #announcements (it is not among the rooms the client asked for).
  roomConversation(ANNOUNCEMENTS)
  open(roomConversation(DEFAULT_ROOM).key)
  // What this tab showed before a reload (the client resumes the session, so nothing said
  // meanwhile is lost: it arrives through the poll); the open room's history follows once the
  // session is ready, and fills in what the page did not keep.
  try { showPast(JSON.parse(sessionStorage.getItem(TRANSCRIPT_KEY) ?? '[]')) } catch {}
  for (const room of chat.joinedRooms) roomConversation(room)
  chat.ready().then(() => {
    ui.me.title = `Session ${chat.id}`
    const conv = conversations.get(active)
    if (conv !== undefined) loadHistory(conv)
    refreshMembers(shownRoom, 0)
  }, () => {})
  ui.text.focus()
  // The page keeps its transcript when it goes away; the client keeps its session by itself.
  window.addEventListener('pagehide', saveTranscript)
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && shownRoom !== '') refreshMembers(shownRoom, 0)
  })
}

/** Ends the session (for every tab of this browser) and forgets the name and the transcript. */
async function signOut () {
  try { localStorage.removeItem('chat-name') } catch {}
  try { sessionStorage.removeItem(TRANSCRIPT_KEY) } catch {}
  transcript = []
  window.removeEventListener('pagehide', saveTranscript)
  await chat?.close()
  window.location.reload()
}

ui.nameForm.addEventListener('submit', (event) => {
  event.preventDefault()
  const name = ui.name.value.trim()
  if (name !== '') start(name)
})

ui.composer.addEventListener('submit', (event) => {
  event.preventDefault()
  sendCurrent()
})

ui.text.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault()
    sendCurrent()
  }
})

ui.joinForm.addEventListener('submit', (event) => {
  event.preventDefault()
  const room = ui.roomName.value.trim()
  if (room === '' || chat === null) return
  ui.roomName.value = ''
  joinRoom(room)
})

ui.toggleSidebar.addEventListener('click', () => {
  showSidebar(!ui.sidebar.classList.contains('open'))
})

ui.leave.addEventListener('click', () => {
  const conv = conversations.get(active)
  if (conv?.kind === 'room') leaveRoom(conv.target)
})

ui.signOut.addEventListener('click', () => { signOut() })

// A name chosen before (in this tab or another of this browser): straight into the chat.
let remembered = ''
try { remembered = localStorage.getItem('chat-name') ?? '' } catch {}
if (remembered !== '') {
  start(remembered)
} else {
  ui.name.focus()
}

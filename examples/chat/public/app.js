/**
 * The example chat page. It uses the package's client (the browser build, served at /client.js)
 * and nothing else. Every piece of user text is put on the page with textContent, never as HTML.
 */
import { createChatClient } from '/client.js'

const DEFAULT_ROOM = 'lobby'
/** Entries kept per conversation (older ones scroll away for good). */
const MAX_ENTRIES = 500

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
  text: byId('text'),
  textLabel: byId('text-label'),
  sendError: byId('send-error')
}

/** @type {import('../../../lib/client/index.js').ChatClient<{ text: string, name: string }, { name: string }> | null} */
let chat = null
let myName = ''
/** key ('room:NAME', 'dm:SESSION_ID', 'all') → { key, kind, target, label, entries, unread } */
const conversations = new Map()
/** room → Map(session id → name) */
const roomMembers = new Map()
/** session id → name, learned from messages and member lists */
const names = new Map()
let active = null
/** The room whose members the sidebar shows (the last room opened). */
let shownRoom = DEFAULT_ROOM
let missedTotal = 0
const refreshTimers = new Map()

/* ---------------------------------------------------------------------------------------- */
/* Conversations and rendering                                                               */
/* ---------------------------------------------------------------------------------------- */

function conversation (kind, target, label) {
  const key = kind === 'all' ? 'all' : `${kind}:${target}`
  let conv = conversations.get(key)
  if (conv === undefined) {
    conv = { key, kind, target, label, entries: [], unread: 0 }
    conversations.set(key, conv)
    renderNav()
  } else if (label !== undefined && conv.label !== label) {
    conv.label = label
    renderNav()
  }
  return conv
}

function titleOf (conv) {
  if (conv.kind === 'room') return `#${conv.target}`
  if (conv.kind === 'dm') return conv.label
  return 'Announcements'
}

function addEntry (conv, entry) {
  conv.entries.push(entry)
  if (conv.entries.length > MAX_ENTRIES) conv.entries.splice(0, conv.entries.length - MAX_ENTRIES)
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
  li.className = entry.mine ? 'msg mine' : 'msg'
  li.dataset.id = entry.id
  const meta = document.createElement('div')
  meta.className = 'meta'
  const author = document.createElement('span')
  author.className = 'author'
  author.textContent = entry.mine ? 'You' : entry.name
  const time = document.createElement('time')
  time.dateTime = new Date(entry.ts).toISOString()
  time.textContent = formatTime(entry.ts)
  meta.append(author, time)
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
    empty.textContent = conv.kind === 'dm' ? `Only ${conv.label} will see what you write here.` : 'No messages yet. Say hello!'
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
  const rooms = [...conversations.values()].filter(c => c.kind !== 'dm')
  const dms = [...conversations.values()].filter(c => c.kind === 'dm')
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

function renderMembers () {
  const members = roomMembers.get(shownRoom)
  ui.membersRoom.textContent = conversations.has(`room:${shownRoom}`) ? `#${shownRoom}` : 'no room'
  const items = []
  for (const [id, name] of [...(members ?? new Map())].sort((a, b) => a[1].localeCompare(b[1]))) {
    const li = document.createElement('li')
    if (id === chat?.id) {
      const you = document.createElement('span')
      you.className = 'you'
      you.textContent = `${name} (you)`
      li.append(you)
    } else {
      const button = document.createElement('button')
      button.type = 'button'
      button.dataset.member = id
      button.title = `Write to ${name} privately`
      button.setAttribute('aria-label', `Write to ${name} privately`)
      const label = document.createElement('span')
      label.className = 'label'
      label.textContent = name
      button.append(avatar(name), label)
      button.addEventListener('click', () => open(conversation('dm', id, name).key))
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
  ui.convTitle.textContent = titleOf(conv)
  ui.textLabel.textContent = conv.kind === 'dm' ? `Private message to ${conv.label}` : `Message to ${titleOf(conv)}`
  ui.leave.hidden = conv.kind !== 'room'
  ui.leave.setAttribute('aria-label', `Leave ${titleOf(conv)}`)
  ui.composer.hidden = conv.kind === 'all'
  ui.sendError.hidden = true
  renderNav()
  renderLog()
  renderMembers()
  if (ui.sidebar.classList.contains('open')) {
    showSidebar(false)
    ui.text.focus()
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

/** Re-reads a room's member list shortly after a change (join/leave notices keep it live meanwhile). */
function refreshMembers (room, delayMs = 250) {
  clearTimeout(refreshTimers.get(room))
  refreshTimers.set(room, setTimeout(async () => {
    refreshTimers.delete(room)
    if (chat === null || !conversations.has(`room:${room}`)) return
    try {
      const list = await chat.members(room)
      const map = new Map()
      for (const m of list) {
        const name = typeof m.profile?.name === 'string' ? m.profile.name : 'someone'
        map.set(m.id, name)
        names.set(m.id, name)
      }
      roomMembers.set(room, map)
      if (room === shownRoom) renderMembers()
    } catch {
      // Not a member any more, or offline: the join/leave notices keep the list meanwhile.
    }
  }, delayMs))
}

function onMessage (m) {
  if (m.type === 'join' || m.type === 'leave') {
    const name = typeof m.data?.name === 'string' ? m.data.name : 'someone'
    if (m.from !== null) names.set(m.from, name)
    if (m.room === null) return
    const list = members(m.room)
    if (m.type === 'join') list.set(m.from, name)
    else list.delete(m.from)
    // Our own join may arrive before join() resolves: the room's conversation starts with it.
    const conv = m.type === 'join' && m.from === chat.id ? conversation('room', m.room) : conversations.get(`room:${m.room}`)
    if (conv !== undefined) {
      const who = m.from === chat.id ? 'You' : name
      addEntry(conv, { system: true, text: `${who} ${m.type === 'join' ? 'joined' : 'left'}` })
    }
    if (m.room === shownRoom) renderMembers()
    refreshMembers(m.room)
    return
  }
  const text = typeof m.data?.text === 'string' ? m.data.text : JSON.stringify(m.data)
  const name = typeof m.data?.name === 'string' ? m.data.name : (m.from === null ? 'Server' : names.get(m.from) ?? 'someone')
  let conv
  if (m.room !== null) conv = conversation('room', m.room)
  else if (m.to !== null && m.from !== null) conv = conversation('dm', m.from, name)
  else conv = conversation('all', '', 'Announcements')
  addEntry(conv, { id: m.id, ts: m.ts, name, text, mine: m.from !== null && m.from === chat.id })
}

const STATUS_TEXT = { connecting: 'Connecting…', live: 'Live', retrying: 'Reconnecting…', closed: 'Disconnected' }

function onState ({ state, reason }) {
  setStatus(state, STATUS_TEXT[state])
  if (state === 'live') clearNotice('retrying')
  if (state === 'closed') {
    clearNotice('retrying')
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
  ui.me.hidden = false
  ui.me.textContent = `Signed in as ${myName}`
  ui.me.title = `Session ${id}`
  if (previousId !== null) {
    notice('session', 'The server had forgotten this session (a restart, or a long absence). You are back with a new session; messages sent to the old one were lost.')
    for (const room of roomMembers.keys()) refreshMembers(room, 0)
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
    case 'LONGPOLL_MESSAGE_TOO_LARGE': return 'The message is too long.'
    case 'LONGPOLL_BAD_MESSAGE': return 'The server refused this message.'
    case 'LONGPOLL_CLIENT_NETWORK':
    case 'LONGPOLL_CLIENT_TIMEOUT': return 'Not sent: the connection is down. Send it again when it is back.'
    case 'LONGPOLL_CLIENT_CLOSED': return 'Not sent: the chat is disconnected.'
    default: return `Not sent: ${err?.message ?? err}`
  }
}

async function sendCurrent () {
  const conv = conversations.get(active)
  const text = ui.text.value.trim()
  if (conv === undefined || chat === null || text === '') return
  const button = ui.composer.querySelector('button')
  button.disabled = true
  ui.sendError.hidden = true
  try {
    const target = conv.kind === 'room' ? { room: conv.target } : { to: conv.target }
    const sent = await chat.send({ text }, target)
    ui.text.value = ''
    // Direct messages go to the addressee alone: show our own copy here.
    if (conv.kind === 'dm') addEntry(conv, { id: sent.id, ts: sent.ts, name: myName, text, mine: true })
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
    await chat.join(room)
    open(conversation('room', room).key)
    refreshMembers(room, 0)
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
  conversations.delete(`room:${room}`)
  roomMembers.delete(room)
  const next = [...conversations.values()].find(c => c.kind === 'room') ?? [...conversations.values()][0]
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

function start (name) {
  myName = name
  try { localStorage.setItem('chat-name', name) } catch {}
  chat = createChatClient({ url: '/chat', profile: { name }, rooms: [DEFAULT_ROOM] })
  chat.on('message', onMessage)
  chat.on('state', onState)
  chat.on('retrying', onRetrying)
  chat.on('missed', onMissed)
  chat.on('session', onSession)
  setStatus('connecting', STATUS_TEXT.connecting)
  ui.welcome.hidden = true
  ui.chat.hidden = false
  open(conversation('room', DEFAULT_ROOM).key)
  chat.ready().then(() => refreshMembers(DEFAULT_ROOM, 0), () => {})
  ui.text.focus()
  // Ends the session when the page goes away (the request is sent with keepalive).
  window.addEventListener('pagehide', () => { chat?.close() })
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

try { ui.name.value = localStorage.getItem('chat-name') ?? '' } catch {}
ui.name.focus()

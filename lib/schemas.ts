/** TypeBox schemas of every body, query, param and response of PROTOCOL.md. */
import { Type, type Static } from '@sinclair/typebox'
import { ROOM_PATTERN, SESSION_ID_PATTERN } from './util.js'

export const RoomName = Type.String({ pattern: ROOM_PATTERN, description: 'Room name' })
export const SessionId = Type.String({ pattern: SESSION_ID_PATTERN, description: 'Public session id' })
const Profile = Type.Object({}, { additionalProperties: true, description: 'Small app data shown to others' })
const NullableProfile = Type.Union([Profile, Type.Null()])

export const ErrorReply = Type.Object({
  statusCode: Type.Integer(),
  // Always set by the plugin's own errors; optional for errors an app's hook throws.
  code: Type.Optional(Type.String()),
  error: Type.String(),
  message: Type.String()
})

const errors = { '4xx': ErrorReply, '5xx': ErrorReply }

export const AuthHeaders = Type.Object({
  authorization: Type.Optional(Type.String({ description: 'Bearer <token>' }))
})

export const RegisterBody = Type.Object({
  rooms: Type.Optional(Type.Array(RoomName)),
  profile: Type.Optional(NullableProfile)
})
export type RegisterBodyT = Static<typeof RegisterBody>

export const RegisterReply = Type.Object({
  id: Type.String(),
  token: Type.String(),
  cursor: Type.String(),
  pollTimeoutMs: Type.Integer(),
  messageTtlMs: Type.Integer(),
  sessionTtlMs: Type.Integer()
})

export const PollQuery = Type.Object({
  cursor: Type.Optional(Type.String({ description: 'Opaque cursor from the previous response' })),
  // A pattern rather than Type.Integer: conversion would truncate `wait=1.5` to 1 instead of refusing it.
  wait: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'Longest hold in ms (integer >= 0), capped at pollTimeout' }))
})
export type PollQueryT = Static<typeof PollQuery>

export const WireMessage = Type.Object({
  id: Type.String(),
  type: Type.Union([Type.Literal('message'), Type.Literal('join'), Type.Literal('leave')]),
  from: Type.Union([Type.String(), Type.Null()]),
  room: Type.Union([Type.String(), Type.Null()]),
  to: Type.Union([Type.String(), Type.Null()]),
  data: Type.Unknown(),
  ts: Type.Number()
})

export const PollReply = Type.Object({
  cursor: Type.String(),
  messages: Type.Array(WireMessage),
  missed: Type.Integer()
})

export const MessageBody = Type.Object({
  data: Type.Unknown(),
  room: Type.Optional(RoomName),
  to: Type.Optional(SessionId)
})
export type MessageBodyT = Static<typeof MessageBody>

export const MessageReply = Type.Object({ id: Type.String(), ts: Type.Number() })

export const RoomParams = Type.Object({ room: RoomName })
export type RoomParamsT = Static<typeof RoomParams>

export const MembersReply = Type.Object({
  members: Type.Array(Type.Object({
    id: Type.String(),
    profile: NullableProfile,
    lastSeen: Type.Number()
  }))
})

const NoContent = Type.Null({ description: 'No content' })

export const schemas = {
  register: { body: RegisterBody, response: { 201: RegisterReply, ...errors } },
  poll: { headers: AuthHeaders, querystring: PollQuery, response: { 200: PollReply, ...errors } },
  messages: { headers: AuthHeaders, body: MessageBody, response: { 202: MessageReply, ...errors } },
  join: { headers: AuthHeaders, params: RoomParams, response: { 204: NoContent, ...errors } },
  leave: { headers: AuthHeaders, params: RoomParams, response: { 204: NoContent, ...errors } },
  members: { headers: AuthHeaders, params: RoomParams, response: { 200: MembersReply, ...errors } },
  endSession: { headers: AuthHeaders, response: { 204: NoContent, ...errors } }
}

/**
 * The wire format of PROTOCOL.md, defined once: the TypeBox schema of every shape that crosses
 * the wire (the message, the member, each request body, query, param and reply, the error reply)
 * and the list of error codes with their statuses. The TypeScript types are derived from the
 * schemas with `Static<>`, so a change here reaches every user of a shape and `tsc` reports what
 * no longer fits:
 * - `schemas.ts` builds the route schemas from these (validation and response serialization);
 * - `errors.ts` makes one error per code of `ERROR_CODES`;
 * - `types/index.ts` re-exports the types (`Message`, `Member`, ...) for the package's users;
 * - the client (`client/`) imports the types only (`import type`), and refines some of them
 *   (`ChatMessage`, `ChatMember`): nothing of this file reaches the browser bundle at run time.
 *
 * Property comments below are the ones shown to users of the types.
 */
import { Type, type Static } from '@sinclair/typebox'

/* ------------------------------------------------------------------------------------------ */
/* Names                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/** A room name: 1 to 64 of `A-Z a-z 0-9 _ . : -`, and not `.` or `..`. */
export const ROOM_PATTERN = '^(?!\\.{1,2}$)[A-Za-z0-9_.:-]{1,64}$'
/** A public session id as `to` accepts it. */
export const SESSION_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$'

export const RoomNameSchema = Type.String({ pattern: ROOM_PATTERN, description: 'Room name' })
export const SessionIdSchema = Type.String({ pattern: SESSION_ID_PATTERN, description: 'Public session id' })

/**
 * A profile: small app data shown to others (member lists, join/leave notices). Any JSON object;
 * the schema stays `additionalProperties: true` (not a `patternProperties` record) so that
 * validation and serialization are those of a plain object.
 */
export const ProfileSchema = Type.Unsafe<Record<string, unknown>>(
  Type.Object({}, { additionalProperties: true, description: 'Small app data shown to others' })
)
export type Profile = Static<typeof ProfileSchema>
export const NullableProfileSchema = Type.Union([ProfileSchema, Type.Null()])

/* ------------------------------------------------------------------------------------------ */
/* Message and member                                                                         */
/* ------------------------------------------------------------------------------------------ */

export const MessageTypeSchema = Type.Union([Type.Literal('message'), Type.Literal('join'), Type.Literal('leave')])
export type MessageType = Static<typeof MessageTypeSchema>

/** A message as it appears on the wire (PROTOCOL.md, "Message"). */
export const MessageSchema = Type.Object({
  id: Type.String(),
  type: MessageTypeSchema,
  /** Sender's session id; null for messages sent by the application through `app.longPoll`. */
  from: Type.Union([Type.String(), Type.Null()]),
  room: Type.Union([Type.String(), Type.Null()]),
  to: Type.Union([Type.String(), Type.Null()]),
  data: Type.Unknown(),
  /** Epoch milliseconds at which the server accepted the message. */
  ts: Type.Number()
})

/** A message as it appears on the wire (PROTOCOL.md, "Message"), with `data` of type `T`. */
export interface Message<T = unknown> extends Omit<Static<typeof MessageSchema>, 'data'> {
  data: T
}

/** A live session as member lists show it. */
export const MemberSchema = Type.Object({
  id: Type.String(),
  profile: NullableProfileSchema,
  /** Epoch milliseconds of the session's last authenticated request. */
  lastSeen: Type.Number()
})
export type Member = Static<typeof MemberSchema>

/* ------------------------------------------------------------------------------------------ */
/* Requests and replies, route by route                                                       */
/* ------------------------------------------------------------------------------------------ */

/** The header of every route that takes a session token. */
export const AuthHeadersSchema = Type.Object({
  authorization: Type.Optional(Type.String({ description: 'Bearer <token>' }))
})

/** `POST /register` */
export const RegisterBodySchema = Type.Object({
  rooms: Type.Optional(Type.Array(RoomNameSchema)),
  profile: Type.Optional(NullableProfileSchema)
})
export type RegisterBody = Static<typeof RegisterBodySchema>

export const RegisterReplySchema = Type.Object({
  /** The public session id (others address direct messages to it). */
  id: Type.String(),
  /** The secret bearer token of the session. */
  token: Type.String(),
  /** The cursor to send with the first poll. */
  cursor: Type.String(),
  pollTimeoutMs: Type.Integer(),
  messageTtlMs: Type.Integer(),
  sessionTtlMs: Type.Integer()
})
export type RegisterReply = Static<typeof RegisterReplySchema>

/** `GET /poll` */
export const PollQuerySchema = Type.Object({
  cursor: Type.Optional(Type.String({ description: 'Opaque cursor from the previous response' })),
  // A pattern rather than Type.Integer: conversion would truncate `wait=1.5` to 1 instead of refusing it.
  wait: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'Longest hold in ms (integer >= 0), capped at pollTimeout' }))
})
export type PollQuery = Static<typeof PollQuerySchema>

export const PollReplySchema = Type.Object({
  cursor: Type.String(),
  messages: Type.Array(MessageSchema),
  /** Messages for this session dropped undelivered (expired or overflowed) since the last report. */
  missed: Type.Integer()
})
export type PollReply = Static<typeof PollReplySchema>

/** `POST /messages`: to a room, to one session (`to`), or (neither) to every session. */
export const MessageBodySchema = Type.Object({
  data: Type.Unknown(),
  room: Type.Optional(RoomNameSchema),
  to: Type.Optional(SessionIdSchema)
})
export type MessageBody = Static<typeof MessageBodySchema>

export const MessageReplySchema = Type.Object({ id: Type.String(), ts: Type.Number() })
export type MessageReply = Static<typeof MessageReplySchema>

/** `POST /rooms/:room/join`, `POST /rooms/:room/leave`, `GET /rooms/:room/members` */
export const RoomParamsSchema = Type.Object({ room: RoomNameSchema })
export type RoomParams = Static<typeof RoomParamsSchema>

export const MembersReplySchema = Type.Object({ members: Type.Array(MemberSchema) })
export type MembersReply = Static<typeof MembersReplySchema>

/** The body of 204 answers (join, leave, `DELETE /session`). */
export const NoContentSchema = Type.Null({ description: 'No content' })

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/** Every error answer: Fastify's error shape. */
export const ErrorReplySchema = Type.Object({
  statusCode: Type.Integer(),
  /** Always set by the plugin's own errors; optional for errors an app's hook throws. */
  code: Type.Optional(Type.String()),
  error: Type.String(),
  message: Type.String()
})
export type ErrorReply = Static<typeof ErrorReplySchema>

/** Every error code of PROTOCOL.md with the HTTP status it is sent with. */
export const ERROR_CODES = {
  LONGPOLL_UNAUTHORIZED: 401,
  LONGPOLL_TOO_MANY_ROOMS: 403,
  LONGPOLL_PROFILE_TOO_LARGE: 413,
  LONGPOLL_SESSIONS_FULL: 503,
  LONGPOLL_BAD_CURSOR: 400,
  LONGPOLL_UNKNOWN_SESSION: 401,
  LONGPOLL_POLL_SUPERSEDED: 409,
  LONGPOLL_SHUTTING_DOWN: 503,
  LONGPOLL_BAD_MESSAGE: 400,
  LONGPOLL_NOT_A_MEMBER: 403,
  LONGPOLL_NO_SUCH_SESSION: 404,
  LONGPOLL_MESSAGE_TOO_LARGE: 413,
  LONGPOLL_RATE_LIMITED: 429,
  LONGPOLL_STORE_UNAVAILABLE: 503
} as const
export type ErrorCode = keyof typeof ERROR_CODES

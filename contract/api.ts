import { Type, type Static } from '@sinclair/typebox';

/** HTTP API bodies shared by the alerts process and its clients (dashboards, tests, device-sim). */

export const LoginRequest = Type.Object(
  { username: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 256 }) },
  { additionalProperties: false },
);
export type LoginRequest = Static<typeof LoginRequest>;

export const LoginResponse = Type.Object({
  token: Type.String(),
  expiresAt: Type.Integer(),
  user: Type.Object({
    username: Type.String(),
    displayName: Type.String(),
    role: Type.String(),
    homeId: Type.Optional(Type.String()),
    /** Role `provider` (issue 15): the provider, and the households it serves. */
    providerId: Type.Optional(Type.String()),
    homeIds: Type.Optional(Type.Array(Type.String())),
  }),
});
export type LoginResponse = Static<typeof LoginResponse>;

export const ApiError = Type.Object({ code: Type.String(), message: Type.String() });
export type ApiError = Static<typeof ApiError>;

export const AckRequest = Type.Object({ comment: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false });
export type AckRequest = Static<typeof AckRequest>;

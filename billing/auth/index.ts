/** Billing API auth: who the caller is, from a verified JWT. */
export type { Principal, Role } from './principal.ts';
export { ROLES, UUID_RE } from './principal.ts';
export { createTokenVerifier, unauthenticated, type TokenVerifier, type VerifierOptions } from './verifier.ts';
export { signDevToken, parseTtl, type DevTokenOptions } from './tokens.ts';
export { verifierFromConfig } from './from-config.ts';

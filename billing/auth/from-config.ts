import type { Config } from '../../core/config.ts';
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/log.ts';
import { createTokenVerifier, type TokenVerifier } from './verifier.ts';

/** The verifier the configured key source calls for; throws naming the variables when none or several are set. */
export function verifierFromConfig(config: Pick<Config, 'jwtSecret' | 'jwtPublicKey' | 'jwtJwksUrl' | 'jwtIssuer' | 'jwtAudience'>, clock: Clock, log?: Logger): TokenVerifier {
  return createTokenVerifier({
    secret: config.jwtSecret,
    publicKeyPem: config.jwtPublicKey,
    jwksUrl: config.jwtJwksUrl,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    clock,
    log,
  });
}

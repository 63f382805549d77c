import { Counter, type Registry } from 'prom-client';

/** Multi-factor sign-in SLIs: sign-in steps by method and outcome, and factor changes. */
export interface MfaMetrics {
  signIns: Counter<'method' | 'step' | 'outcome'>;
  factorChanges: Counter<'factor' | 'change'>;
}

export function mfaMetrics(registry: Registry): MfaMetrics {
  return {
    signIns: new Counter({
      name: 'latchkey_sign_in_factors_total',
      help: 'Sign-in steps beyond the password by method (passkey, totp, recovery_code), step (first: usernameless passkey sign-in; second: a second factor or step-up) and outcome (success, failure, throttled). Password attempts are latchkey_logins_total.',
      labelNames: ['method', 'step', 'outcome'],
      registers: [registry],
    }),
    factorChanges: new Counter({
      name: 'latchkey_mfa_factor_changes_total',
      help: 'Second factors enrolled or removed by their owner, by factor (passkey, totp, recovery_codes) and change (enrolled, removed). Operator resets are audited as mfa.reset.',
      labelNames: ['factor', 'change'],
      registers: [registry],
    }),
  };
}

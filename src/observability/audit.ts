import type { Logger } from 'pino';

/**
 * Security events, one structured log line each with an `event` field. Never pass a token,
 * secret, password or code here: pass its identifier (jti, family id, kid, client_id).
 */
export type AuditEventName =
  | 'server.started'
  | 'server.stopped'
  | (string & {});

export interface AuditFields {
  client_id?: string;
  sub?: string;
  scope?: string;
  ip?: string;
  user_agent?: string;
  request_id?: string;
  jti?: string;
  [field: string]: unknown;
}

export interface AuditLog {
  record(event: AuditEventName, fields?: AuditFields): void;
}

export function createAuditLog(logger: Logger): AuditLog {
  const audit = logger.child({ audit: true });
  return {
    record(event, fields = {}) {
      audit.info({ ...fields, event }, event);
    },
  };
}

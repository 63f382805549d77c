import { AuditEventRepository } from '../../platform/observability/audit-event-store.js';
import type { Capability } from '../../server/context.js';
import { adminRoutes } from './routes.js';
import { adminSettings } from './settings.js';

/** The admin API under /admin; on only with ADMIN_TOKENS. */
export const admin: Capability = {
  name: 'admin',
  settings: adminSettings,
  enabled: (config) => config.adminTokens.length > 0,
  register: (ctx) => ({
    routes: [adminRoutes(ctx.services, ctx.config, new AuditEventRepository(ctx.store.db), ctx.audit, ctx.keyAdministration, {
      db: ctx.store.db, registry: ctx.metrics.registry, audit: ctx.audit, clock: ctx.clock,
    })],
  }),
};

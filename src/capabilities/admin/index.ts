import { AuditEventRepository } from '../../platform/observability/audit-event-store.js';
import { adminApiEnabled } from '../../platform/config/admin-access.js';
import type { Capability } from '../../server/context.js';
import { adminRoutes } from './routes.js';
import { adminSettings } from './settings.js';

/** The admin API under /admin: over HTTP with ADMIN_TOKENS; on the local admin socket in embedded mode (ADMIN_SOCKET). */
export const admin: Capability = {
  name: 'admin',
  settings: adminSettings,
  enabled: (config) => adminApiEnabled(config),
  register: (ctx) => ({
    routes: [adminRoutes(ctx.services, ctx.config, new AuditEventRepository(ctx.store.db), ctx.audit, ctx.keyAdministration, {
      db: ctx.store.db, registry: ctx.metrics.registry, audit: ctx.audit, clock: ctx.clock,
    })],
  }),
};

import { isLoopbackHost } from '../../platform/uris.js';
import type { Capability } from '../../server/context.js';
import { createDemoData, DEMO_CLIENT_ID } from './demo-data.js';
import { tryRoutes } from './routes.js';
import { demoSettings } from './settings.js';

/**
 * A newcomer's first start on the embedded store: demo user, demo client, try-it page. Only
 * where a newcomer tries it — the embedded store and an issuer on this machine, never a
 * deployment with a public issuer, which would get a live demo account.
 */
export const demo: Capability = {
  name: 'demo',
  settings: demoSettings,
  enabled: (config) => !config.databaseUrl && config.demo && isLoopbackHost(new URL(config.issuer).hostname),
  async register(ctx) {
    const created = await createDemoData(ctx, { users: ctx.services.users, registry: ctx.services.registry, hasher: ctx.services.hasher });
    const routes = await ctx.services.clients.get(DEMO_CLIENT_ID) ? [tryRoutes(ctx.config)] : [];
    return { routes, ...(created ? { demo: created } : {}) };
  },
};

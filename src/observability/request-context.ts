import { AsyncLocalStorage } from 'node:async_hooks';

/** Who is asking, for the duration of one HTTP request: audit events pick it up by themselves. */
export interface RequestContext {
  request_id: string;
  ip: string;
  user_agent?: string | undefined;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

import { schemeAndHost } from '../../platform/uris.js';
import { createHash } from 'node:crypto';
import cookie from '@fastify/cookie';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { CapabilityContext } from '../../server/context.js';
import {
  beginAuthorization, continueAuthorization, decideConsent, interactionRedirectUri, pushAuthorizationRequest,
  type AuthorizationDeps, type AuthorizationStep, type BrowserSession,
} from './authorization-flow.js';
import { AuthorizationError } from './authorization-request.js';
import { ClientAuthenticationFailed } from '../../oauth/client-auth/authenticate.js';
import { isSelfRegistered } from '../../oauth/client.js';
import { InvalidRequest, OAuthError } from '../../oauth/errors.js';
import { formBody } from '../../oauth/params.js';
import { describeScopes } from '../../oauth/scope-descriptions.js';
import { readIdTokenHint } from '../../oauth/tokens.js';
import { ConsentRepository } from '../../oauth/consent-store.js';
import { SessionClientRepository } from '../../users/session-clients-store.js';
import type { AuthorizationCodeRepository } from './code-store.js';
import type { AuthorizationRequestRepository } from './request-store.js';
import { consentPage, errorPage, FORM_POST_SCRIPT, formPostPage, untrustedAuthorizationErrorPage } from '../../platform/ui/pages.js';
import { requestAuditFields } from '../../server/http/audit-fields.js';
import { createRateLimiter } from '../../server/http/rate-limit.js';
import { formActionSource, htmlCsp } from '../../server/http/security-headers.js';
import { FORM, isForm } from '../../server/http/forms.js';
import { sendHtml } from '../../server/http/html.js';

const FORM_POST_SCRIPT_HASH = `'sha256-${createHash('sha256').update(FORM_POST_SCRIPT).digest('base64')}'`;



/**
 * The form-action sources of a sign-in form that returns to `returnTo`, when that is a pending
 * interaction: the sign-in may end in a redirect to its client (consent on record), and a
 * form's redirects must be allowed by form-action too.
 */
export function interactionFormActions(requests: AuthorizationRequestRepository, clock: CapabilityContext['clock']): (returnTo: string) => Promise<string[] | undefined> {
  return async (returnTo) => {
    // The id's format is the flow's to check (interactionRedirectUri).
    const id = /^\/interaction\/([^/?#]+)$/.exec(returnTo)?.[1];
    if (!id) return undefined;
    const redirectUri = await interactionRedirectUri(id, { requests, clock });
    return redirectUri ? ["'self'", formActionSource(redirectUri)] : ["'self'"];
  };
}

/**
 * The browser side of the authorization code flow: /authorize (GET and POST), the pending
 * interaction at /interaction/:id (sign-in hand-off and the consent page) and /par.
 */
export function authorizeRoutes(
  context: CapabilityContext, stores: { codes: AuthorizationCodeRepository; requests: AuthorizationRequestRepository },
): FastifyPluginAsync {
  const { config, store, clock, audit, services: service } = context;
  const { cookies } = service.browserSessions;
  const consents = new ConsentRepository(store.db);
  const metrics = service.metrics;
  const issuerHost = new URL(config.issuer).host;
  const deps: AuthorizationDeps = {
    clients: service.clients,
    requests: stores.requests,
    codes: stores.codes,
    sessionClients: new SessionClientRepository(store.db),
    consents,
    clock,
    issuer: config.issuer,
    codeTtl: config.authorizationCodeTtl,
    interactionTtl: config.interactionTtl,
    parTtl: config.parTtl,
    signingAlgs: () => context.keys.algorithms(),
    idTokenHintSubject: (token) => readIdTokenHint({ keys: context.keys, issuer: config.issuer }, token)?.sub,
  };

  async function browserSession(req: FastifyRequest): Promise<BrowserSession | undefined> {
    const s = await service.browserSessions.current(req);
    return s ? { userId: s.user_id, sid: s.sid, authTime: s.auth_time, amr: s.amr, acr: s.acr } : undefined;
  }

  /** An error the browser must not be redirected with (RFC 6749 §4.1.2.1): shown here instead. */
  function errorPageFor(reply: FastifyReply, err: AuthorizationError): FastifyReply {
    metrics.authorizations.inc({ outcome: 'not_redirected' });
    return sendHtml(reply, 400, errorPage('Request not valid', `The application sent a request that cannot be served: ${err.oauth.description}.`));
  }

  async function render(step: AuthorizationStep, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    if (step.kind === 'login') {
      const query = new URLSearchParams({ return_to: `/interaction/${step.interactionId}`, ...(step.loginHint ? { login_hint: step.loginHint } : {}) });
      return reply.code(303).header('location', `/login?${query}`).send();
    }
    if (step.kind === 'step_up') {
      return reply.code(303).header('location', context.signInFactors().stepUpPath(`/interaction/${step.interactionId}`, step.acr)).send();
    }
    if (step.kind === 'consent') {
      // Allow and Deny both end in a redirect to the client.
      reply.header('content-security-policy', htmlCsp({ formAction: ["'self'", formActionSource(step.request.redirectUri)] }));
      const user = await service.users.findById(step.userId);
      const m = step.client.metadata;
      const clientName = m.client_name ?? step.client.clientId;
      // A self-registered client's links are shown only on the host this request's redirect
      // leads to: another of its redirect URIs (a decoy on a bank's host) vouches for nothing.
      const returnsTo = schemeAndHost(step.request.redirectUri);
      const link = (uri: string | undefined) => (!isSelfRegistered(step.client) || (uri !== undefined && returnsTo !== undefined && schemeAndHost(uri) === returnsTo) ? uri : undefined);
      return sendHtml(reply, 200, consentPage({
        csrf: cookies.csrfToken(req, reply),
        clientName,
        // Consent phishing: where Allow leads, and whether anyone but the client vouches for its name and links.
        redirectUri: step.request.redirectUri,
        selfRegistered: isSelfRegistered(step.client) ? { clientName, issuerHost } : undefined,
        clientUri: link(m.client_uri),
        policyUri: link(m.policy_uri),
        tosUri: link(m.tos_uri),
        username: user?.username ?? '',
        scopes: describeScopes(step.request.scope.split(' ').filter(Boolean), config.scopeDescriptions ?? {}),
        // Whom the page was shown to: the decision counts only from that account (decideConsent).
        hidden: { shown_to: step.userId },
        action: `/interaction/${step.interactionId}`,
      }));
    }
    metrics.authorizations.inc({ outcome: step.outcome });
    const fields = requestAuditFields(req);
    if (step.issued) {
      audit.record('authorization.code_issued', { client_id: step.client.clientId, sub: step.issued.sub, scope: step.issued.scope, grant_id: step.issued.grantId, ...fields });
    } else if (step.error) {
      audit.record('authorization.failed', { client_id: step.client.clientId, error: step.error.error, reason: step.error.description, ...fields });
    }
    const response = step.response;
    if (step.untrustedRedirect && step.error) {
      // RFC 9700 §4.11.2: shown here, with the response for the person to take back if they choose.
      if (response.mode === 'form_post') reply.header('content-security-policy', htmlCsp({ formAction: [formActionSource(response.action)] }));
      return sendHtml(reply, 400, untrustedAuthorizationErrorPage({
        clientName: step.client.metadata.client_name ?? step.client.clientId, issuerHost,
        error: step.error.error, description: step.error.description, response,
      }));
    }
    if (response.mode === 'query') return reply.code(303).header('location', response.location).send();
    reply.header('content-security-policy', htmlCsp({ formAction: [formActionSource(response.action)], scriptHashes: [FORM_POST_SCRIPT_HASH] }));
    return sendHtml(reply, 200, formPostPage(response.action, response.fields));
  }

  /** Runs one step of the flow; an error that must not be redirected becomes the error page. */
  async function run(reply: FastifyReply, req: FastifyRequest, step: () => Promise<AuthorizationStep>): Promise<FastifyReply> {
    try {
      return await render(await step(), req, reply);
    } catch (err) {
      if (err instanceof AuthorizationError) return errorPageFor(reply, err);
      throw err;
    }
  }

  return async (app) => {
    await app.register(cookie);
    const limiter = createRateLimiter({ windowSeconds: config.rateLimitWindow, metrics: context.metrics });
    // Browser endpoints answer a refusal with a page (and never redirect: the request is not looked at).
    const pageRefusal = (_req: FastifyRequest, reply: FastifyReply, seconds: number) => {
      sendHtml(reply.header('retry-after', String(seconds)), 429, errorPage('Too many requests', `Please wait ${seconds} seconds and try again.`));
      return undefined;
    };
    const clientIdOf = (req: FastifyRequest) => {
      const source = req.method === 'GET' ? req.query : req.body;
      const v = source && typeof source === 'object' ? (source as Record<string, unknown>).client_id : undefined;
      return typeof v === 'string' ? v : undefined;
    };
    const authorizeLimit = limiter.endpoint('authorize', {
      perIp: config.authorizeRateLimitPerIp,
      // Off by default: the client_id is only claimed, so its allowance is anyone's to spend.
      ...(config.authorizeRateLimitPerClient > 0 ? { perKey: { name: 'client', max: config.authorizeRateLimitPerClient, key: clientIdOf } } : {}),
      onLimited: pageRefusal,
    });
    const parLimit = limiter.endpoint('par', { perIp: config.parRateLimitPerIp, authBackoff: service.authBackoff });
    const parDeps = { ...deps, ...service.authDeps, clientRateLimit: limiter.client('par', config.parRateLimitPerClient, clock) };

    // OpenID Connect Core §3.1.2.1: the authorization endpoint takes GET and form POST.
    app.get('/authorize', { preHandler: authorizeLimit }, async (req, reply) =>
      run(reply, req, async () => beginAuthorization(req.query as Record<string, string | string[]>, await browserSession(req), deps)));

    app.post('/authorize', { preHandler: authorizeLimit }, async (req, reply) => {
      if (!isForm(req)) return errorPageFor(reply, new AuthorizationError(new InvalidRequest(`the request body must be ${FORM}`)));
      return run(reply, req, async () => beginAuthorization(formBody(req.body), await browserSession(req), deps));
    });

    app.get('/interaction/:id', { preHandler: authorizeLimit }, async (req, reply) =>
      run(reply, req, async () => continueAuthorization((req.params as { id: string }).id, await browserSession(req), deps)));

    app.post('/interaction/:id', { preHandler: authorizeLimit }, async (req, reply) => {
      const body = isForm(req) && req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
      if (!cookies.csrfValid(req, body.csrf)) {
        return sendHtml(reply, 403, errorPage('Request expired', 'The form expired. Go back to the application and try again.'));
      }
      const decision = body.decision;
      if (decision !== 'allow' && decision !== 'deny') return errorPageFor(reply, new AuthorizationError(new InvalidRequest('decision must be allow or deny')));
      const session = await browserSession(req);
      return run(reply, req, async () => {
        const shownTo = typeof body.shown_to === 'string' ? body.shown_to : '';
        const step = await decideConsent((req.params as { id: string }).id, session, { allow: decision === 'allow', shownTo }, deps);
        if (step.decided) {
          metrics.consentDecisions.inc({ decision: step.decided });
          if (step.kind === 'respond') {
            audit.record(`consent.${step.decided}`, {
              client_id: step.client.clientId, sub: session!.userId, scope: step.issued?.scope, ...requestAuditFields(req),
            });
          }
        }
        return step;
      });
    });

    // RFC 9126 §2: JSON in the token endpoint's style, 201 on success.
    app.post('/par', { preHandler: parLimit }, async (req, reply) => {
      reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
      try {
        if (!isForm(req)) throw new InvalidRequest(`the request body must be ${FORM}`);
        const { client, response } = await pushAuthorizationRequest({ authorization: req.headers.authorization, body: formBody(req.body) }, parDeps);
        metrics.pushedRequests.inc({ outcome: 'success' });
        audit.record('authorization.pushed', { client_id: client.clientId, ...requestAuditFields(req) });
        return reply.code(201).send(response);
      } catch (err) {
        if (err instanceof ClientAuthenticationFailed) service.clientAuthFailed(err, { ...requestAuditFields(req), endpoint: 'par' });
        metrics.pushedRequests.inc({ outcome: err instanceof OAuthError ? err.error : 'server_error' });
        throw err;
      }
    });
  };
}

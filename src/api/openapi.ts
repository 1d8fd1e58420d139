/**
 * The OpenAPI 3.1 document served at /openapi.json. Schemas come from the zod contracts the
 * routes parse with (z.toJSONSchema over the `contracts` registry), so the document cannot
 * describe a shape the API does not accept or answer.
 */
import { z } from 'zod';
import { contracts, listEndpointsQuery } from './contracts.js';

type Json = Record<string, unknown>;

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const json = (id: string) => ({ content: { 'application/json': { schema: ref(id) } } });
const error = (description: string) => ({ description, ...json('Error') });

const idParam = (name: string) => ({
  name,
  in: 'path',
  required: true,
  schema: { type: 'string' },
});

/** Answers every /v1 operation can give besides its own. */
const common = {
  '401': error('Missing or invalid API key'),
  '500': error('Internal error; the detail carries an id that is logged'),
};
const withBody = {
  '400': error('Malformed JSON'),
  '413': error('Body over the size limit'),
  '415': error('Content-Type is not application/json'),
  '422': error('Validation failed; `fields` lists each problem'),
};

function operation(summary: string, responses: Json, extra: Json = {}): Json {
  return { summary, ...extra, responses: { ...responses, ...common } };
}

function body(id: string, required = true): Json {
  return { requestBody: { required, ...json(id) } };
}

function paths(): Json {
  const endpointId = { parameters: [idParam('id')] };
  const queryParams = z.toJSONSchema(listEndpointsQuery, { io: 'input' }) as {
    properties: Record<string, unknown>;
  };
  return {
    '/v1/endpoints': {
      post: operation(
        'Register an endpoint; the answer carries its signing secret, shown only here',
        { '201': { description: 'Created', ...json('CreatedEndpoint') }, ...withBody },
        body('CreateEndpointRequest'),
      ),
      get: operation(
        'List endpoints, oldest first, a page at a time',
        {
          '200': {
            description: 'A page; pass nextCursor as cursor for the next',
            ...json('EndpointList'),
          },
          '422': error('Bad query'),
        },
        {
          parameters: Object.entries(queryParams.properties).map(([name, schema]) => ({
            name,
            in: 'query',
            schema,
          })),
        },
      ),
    },
    '/v1/endpoints/{id}': {
      get: operation(
        'An endpoint with its health: counters and 24-hour attempt statistics',
        {
          '200': { description: 'The endpoint', ...json('EndpointWithHealth') },
          '404': error('No such endpoint'),
        },
        endpointId,
      ),
      patch: operation(
        'Change an endpoint; active: true re-enables it (restarting its stale clock), false disables it',
        {
          '200': { description: 'The endpoint', ...json('Endpoint') },
          '404': error('No such endpoint'),
          ...withBody,
        },
        { ...endpointId, ...body('UpdateEndpointRequest') },
      ),
      delete: operation(
        'Delete an endpoint',
        { '204': { description: 'Deleted' }, '404': error('No such endpoint') },
        endpointId,
      ),
    },
    '/v1/endpoints/{id}/test': {
      post: operation(
        'Send a test event to the endpoint now',
        {
          '202': { description: 'Enqueued', ...json('SendMessageResponse') },
          '404': error('No such endpoint'),
          '409': error('The endpoint is disabled'),
          '503': error('Redis unreachable; see Retry-After'),
          ...withBody,
        },
        { ...endpointId, ...body('TestEndpointRequest', false) },
      ),
    },
    '/v1/endpoints/{id}/rotate-secret': {
      post: operation(
        'Replace the signing secret; the old one keeps signing (a second signature) during the overlap',
        {
          '200': { description: 'The new secret', ...json('RotatedSecret') },
          '404': error('No such endpoint'),
        },
        endpointId,
      ),
    },
    '/v1/endpoints/{id}/recover': {
      post: operation(
        "Replay every delivery to the endpoint that failed since a time (Svix's recover): failed jobs are retried, expired ones re-enqueued",
        {
          '202': { description: 'What was done', ...json('RecoverEndpointResponse') },
          '404': error('No such endpoint'),
          '409': error('The endpoint is disabled'),
          '503': error('Redis unreachable; see Retry-After'),
          ...withBody,
        },
        { ...endpointId, ...body('RecoverEndpointRequest') },
      ),
    },
    '/v1/messages': {
      get: operation(
        "List messages, newest first, a page at a time (a portal session: its owner's only)",
        {
          '200': {
            description: 'A page; pass nextCursor as cursor for the next',
            ...json('MessageList'),
          },
          '403': error("A portal session asking for another owner's messages"),
          '422': error('Bad query'),
        },
        {
          parameters: ['limit', 'cursor', 'ownerId'].map((name) => ({
            name,
            in: 'query',
            schema: { type: 'string' },
          })),
        },
      ),
      post: operation(
        "Send a message to every active endpoint subscribed to its event type: the owner's endpoints with ownerId, else only endpoints without an owner (API keys only)",
        {
          '202': {
            description:
              'Enqueued (or a duplicate of an earlier send with the same idempotency key)',
            ...json('SendMessageResponse'),
          },
          '403': error('A portal session token cannot send'),
          '409': error('The idempotency key was used for a different message'),
          '503': error('Redis unreachable; see Retry-After'),
          ...withBody,
        },
        body('SendMessageRequest'),
      ),
    },
    '/v1/messages/{id}': {
      get: operation(
        'A message with each delivery, its status and its attempts',
        {
          '200': { description: 'The message', ...json('Message') },
          '404': error('No such message'),
        },
        { parameters: [idParam('id')] },
      ),
    },
    '/v1/messages/{id}/redeliver': {
      post: operation(
        'Deliver a message again: failed jobs are retried, finished or expired ones re-enqueued',
        {
          '202': { description: 'What was done per endpoint', ...json('RedeliverResponse') },
          '404': error('No such message'),
          '503': error('Redis unreachable; see Retry-After'),
          ...withBody,
        },
        { parameters: [idParam('id')], ...body('RedeliverRequest', false) },
      ),
    },
    '/v1/owners/{ownerId}/portal-sessions': {
      post: operation(
        "A customer portal session: a Bearer token limited to the owner's endpoints and messages (API keys only)",
        {
          '201': { description: 'Created; the token is shown only here', ...json('PortalSession') },
          '403': error('Made with a portal session token'),
          ...withBody,
        },
        { parameters: [idParam('ownerId')], ...body('CreatePortalSessionRequest', false) },
      ),
      delete: operation(
        'Revoke every live portal session of the owner; the tokens fail from the next request',
        {
          '200': { description: 'How many were revoked', ...json('RevokedPortalSessions') },
          '403': error('Made with a portal session token'),
          '422': error('Bad owner id'),
        },
        { parameters: [idParam('ownerId')] },
      ),
    },
    '/v1/owners/{ownerId}/portal-sessions/{sessionId}': {
      delete: operation(
        'Revoke one portal session',
        {
          '204': { description: 'Revoked' },
          '403': error('Made with a portal session token'),
          '404': error('The owner has no live session with this id'),
        },
        { parameters: [idParam('ownerId'), idParam('sessionId')] },
      ),
    },
    '/healthz': {
      get: {
        summary: 'Redis and PostgreSQL reachability (no authentication)',
        security: [],
        responses: {
          '200': { description: 'Both up', ...json('Health') },
          '503': { description: 'One is down', ...json('Health') },
        },
      },
    },
    '/metrics': {
      get: {
        summary: 'Prometheus metrics (no authentication)',
        security: [],
        responses: {
          '200': {
            description: 'Prometheus text format',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
        },
      },
    },
  };
}

let cached: Json | undefined;

/** Built once per process: the contracts do not change at run time. */
export function openApiDocument(): Json {
  cached ??= build();
  return cached;
}

function build(): Json {
  const { schemas } = z.toJSONSchema(contracts, {
    uri: (id) => `#/components/schemas/${id}`,
    io: 'input',
    unrepresentable: 'any',
    // The date-time format says enough; zod's validating regex is noise in a document.
    override: ({ jsonSchema }) => {
      if (jsonSchema.format === 'date-time') delete jsonSchema.pattern;
    },
  });
  for (const schema of Object.values(schemas)) {
    delete schema.$id;
    delete schema.$schema;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'hookfleet',
      version: '1',
      description:
        'Webhook delivery: register endpoints, send messages, inspect deliveries. Errors are {code, detail} (validation errors add fields).',
    },
    security: [{ apiKey: [] }],
    paths: paths(),
    components: {
      schemas,
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description:
            "A key from HOOKFLEET_API_KEYS, or a portal session token (one owner's endpoints and messages only)",
        },
      },
    },
  };
}

/**
 * Registration-time checks of an endpoint's URL: the SSRF address guard the workers also apply
 * (so a URL the workers would refuse is refused up front, with the reason), and the optional
 * verification request that must be answered 2xx.
 */
import { DeliveryError, HookfleetError } from '../errors.js';
import { newId } from '../ids.js';
import type { AddressGuard } from './addressGuard.js';
import { createDeliveryClient } from './httpClient.js';
import { envelopeBody, envelopeTimestamp, type PayloadFormat } from './envelope.js';
import { signatureHeader } from './signature.js';

/** Event type of the verification request sent for `verify: true`. */
export const VERIFICATION_EVENT_TYPE = 'hookfleet.endpoint.verification';

/** Resolves if the guard lets deliveries reach `url`; otherwise a 422 naming the reason. */
export async function checkEndpointUrl(
  guard: AddressGuard,
  url: string,
  field = 'url',
): Promise<void> {
  try {
    await guard.checkUrl(url);
  } catch (error) {
    // DeliveryError: refused by the guard. Anything else is the host name not resolving
    // (ENOTFOUND, EAI_AGAIN): the URL cannot be accepted either way.
    if (!(error instanceof Error)) throw error;
    const message =
      error instanceof DeliveryError
        ? `deliveries may not go there: ${error.message}`
        : `the host name does not resolve: ${error.message}`;
    throw new HookfleetError('validation_failed', `${field}: ${message}`, 422, [
      { path: field, message },
    ]);
  }
}

export interface VerificationRequest {
  guard: AddressGuard;
  timeoutMs: number;
  endpointId: string;
  url: string;
  secret: string;
  /** As the endpoint will get its deliveries; default 'raw'. */
  payloadFormat?: PayloadFormat | undefined;
  /** The endpoint's custom headers, which its receiver may need to accept anything. */
  headers?: Readonly<Record<string, string>> | undefined;
}

/**
 * Sends one signed verification event, synchronously, and throws a 422 `verification_failed`
 * (with the receiver's status) unless it is answered 2xx. The payload is
 * `{"type":"hookfleet.endpoint.verification","endpointId":…,"sentAt":…}`, in the envelope when the
 * endpoint asked for it.
 */
export async function verifyEndpoint(request: VerificationRequest): Promise<void> {
  const client = createDeliveryClient({
    timeoutMs: request.timeoutMs,
    guard: request.guard,
    connectionsPerOrigin: 1,
  });
  const messageId = newId('msg');
  const now = new Date();
  const timestampSec = Math.floor(now.getTime() / 1000);
  const payload = JSON.stringify({
    type: VERIFICATION_EVENT_TYPE,
    endpointId: request.endpointId,
    sentAt: now.toISOString(),
  });
  const body =
    request.payloadFormat === 'envelope'
      ? envelopeBody(VERIFICATION_EVENT_TYPE, envelopeTimestamp(now), payload)
      : payload;
  try {
    await client.post({
      url: request.url,
      body,
      headers: {
        ...request.headers,
        'content-type': 'application/json',
        'webhook-id': messageId,
        'webhook-timestamp': String(timestampSec),
        'webhook-signature': signatureHeader([request.secret], messageId, timestampSec, body),
      },
    });
  } catch (error) {
    if (!(error instanceof DeliveryError)) throw error;
    const answered =
      error.statusCode === undefined ? 'did not answer' : `answered HTTP ${error.statusCode}`;
    const message = `the verification request ${answered}; expected a 2xx (${error.message})`;
    throw new HookfleetError('verification_failed', `url: ${message}`, 422, [
      { path: 'url', message },
    ]);
  } finally {
    await client.close();
  }
}

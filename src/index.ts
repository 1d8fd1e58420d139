/**
 * hookfleet as a library, for Node producers:
 *
 *   import { Producer } from 'hookfleet';
 *   const producer = new Producer(); // REDIS_URL, DATABASE_URL from the environment
 *   await producer.send({ eventType: 'invoice.paid', payload: { id: 'in_1' } });
 *   await producer.close();
 */
export { Producer, type ProducerOptions, type SendResult } from './producer/producer.js';
export type { SendInput } from './producer/sendInput.js';
export { loadConfig, type Config } from './config.js';
export {
  HookfleetError,
  PermanentDeliveryError,
  RetryableDeliveryError,
  BlockedAddressError,
} from './errors.js';
export {
  DELIVERIES_QUEUE,
  MAINTENANCE_QUEUE,
  MESSAGES_QUEUE,
  type DeliveryJobData,
  type MessageJobData,
} from './jobs.js';

export type { BatchFunction, BatchOptions, BatchScheduler } from "./batcher.js";
export { type LimitedFunction, type LimitHandle, type LimitOptions, limit } from "./limit.js";
export { createQueue, type Queue, type QueueOptions } from "./queue.js";
export { QueueFullError } from "./queue-full-error.js";

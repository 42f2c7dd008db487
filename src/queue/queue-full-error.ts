/** Raised at once when a call would wait in a queue that is full. */
export class QueueFullError extends Error {
  override readonly name = "QueueFullError";
  constructor(
    readonly maxSize: number,
    readonly waiting: number,
  ) {
    super(`Queue is full: max size is ${maxSize} and ${waiting} are waiting`);
  }
}

import type { BatchScheduler } from "../../src/index.js";

/** A batch scheduler tests fire by hand: no wall-clock windows. */
export class ManualScheduler {
  pending: { flush: () => void; waitMs: number; cancelled: boolean }[] = [];
  readonly schedule: BatchScheduler = (flush, waitMs) => {
    const task = { flush, waitMs, cancelled: false };
    this.pending.push(task);
    return () => {
      task.cancelled = true;
    };
  };
  /** Fires every window scheduled so far that was not cancelled. */
  fire(): void {
    const due = this.pending;
    this.pending = [];
    for (const task of due) if (!task.cancelled) task.flush();
  }
  get armed(): number {
    return this.pending.filter((task) => !task.cancelled).length;
  }
}

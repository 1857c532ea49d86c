/** The two ends of a promise that another party settles later (Node 20 has no Promise.withResolvers). */
export interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

/** A promise and its waiter; a rejection nobody awaits yet is not reported as unhandled. */
export function deferred<T>(): { promise: Promise<T>; waiter: Waiter<T> } {
  let waiter: Waiter<T> | undefined;
  const promise = new Promise<T>((resolve, reject) => (waiter = { resolve, reject }));
  promise.catch(() => undefined);
  return { promise, waiter: waiter as Waiter<T> };
}

/**
 * True if `p` settles (either way) within `ms`, false if not; its rejection is handled in both cases,
 * and the timer is released. For a close that must end although what it waits for may never answer
 * (a Redis away or stalled: ioredis keeps its commands queued).
 */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
        // Waiting alone does not keep the process alive.
        timer.unref();
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

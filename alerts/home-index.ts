/**
 * A Map of open records that also lists them by home. The lifecycle and the incident book looked up
 * "this home's open alerts / incidents" by filtering every open one, once per raised alert: when a
 * broker node died under 100,000 devices, ~14,000 device-trouble alerts were raised in a burst, each
 * scanning thousands of open alerts and incidents, and alerts spent whole minutes of CPU in those
 * scans while fire alarms waited behind them (session 12, bench connections100k: 100 % of a 45 s
 * profile under `raise` → `book.place`). A home has at most a few hundred devices, so a lookup by
 * home is cheap however large the site. Records never change home.
 */
export class HomeIndexedMap<K, V> extends Map<K, V> {
  readonly #homeOf: (v: V) => string;
  readonly #byHome = new Map<string, Map<K, V>>();

  constructor(homeOf: (v: V) => string) {
    super();
    this.#homeOf = homeOf;
  }

  override set(key: K, value: V): this {
    // Map's constructor calls set only with an iterable; ours passes none, so the fields exist here.
    // A key set again stays where it was in its home's order, as in the Map's own.
    const prior = super.get(key);
    if (prior !== undefined && this.#homeOf(prior) !== this.#homeOf(value)) this.#unindex(key);
    super.set(key, value);
    const home = this.#homeOf(value);
    let m = this.#byHome.get(home);
    if (m === undefined) this.#byHome.set(home, (m = new Map()));
    m.set(key, value);
    return this;
  }

  override delete(key: K): boolean {
    this.#unindex(key);
    return super.delete(key);
  }

  override clear(): void {
    this.#byHome.clear();
    super.clear();
  }

  /** The records of one home, in the Map's order (what filtering its values by home gives). */
  ofHome(home: string): IterableIterator<V> {
    return (this.#byHome.get(home) ?? new Map<K, V>()).values();
  }

  #unindex(key: K): void {
    const prior = super.get(key);
    if (prior === undefined) return;
    const home = this.#homeOf(prior);
    const m = this.#byHome.get(home);
    m?.delete(key);
    if (m?.size === 0) this.#byHome.delete(home);
  }
}

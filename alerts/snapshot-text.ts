/**
 * Rule-state snapshots as JSON text built in slices from cached fragments (issue 11: the idle p99
 * miss). Pure: no I/O, no clock; the adapter (alerts.ts) decides when each slice runs.
 *
 * Why: with 10,000 devices the rule states are 0.4 MB of JSON at idle and 5.6 MB once every device
 * has reported, and `JSON.stringify` of all of it took 5–10 ms (idle) and 40–65 ms (loaded) of CPU
 * in one event-loop turn every 3 s (`bench/snapshot-cost.ts`), while an alarm message waited.
 *
 * How:
 * - Each rule's state is captured in one turn (a *cut* of that rule): its small parts are serialised
 *   at once, and each large per-device map (`Rule.snapshotMaps`) is captured as its keys and entry
 *   references, not serialised. Rules replace a map's entry when it changes and never mutate a
 *   stored one (copy-on-write per entry, the contract of `snapshotMaps`), so the captured entries
 *   stay the state at the cut while later messages replace them.
 * - Rules are captured one after another (`LazyPart`), so a turn captures at most one rule's maps
 *   (about 1.5 ms of CPU per 10,000 entries). Each rule's state in the file is a consistent cut of
 *   that rule; two rules may be cut a few turns apart, which is harmless: rules never read each
 *   other's state, so each restored rule is exactly a state that rule had.
 * - Each entry's text (`"key":value`) is cached by the entry object's identity (a WeakMap): an entry
 *   that did not change since the last snapshot is not serialised again.
 * - The text is produced in slices (`sliceCut`), each bounded by the characters it emits and the
 *   entries it visits, so no single turn does more than about a millisecond of serialisation.
 * The text is byte for byte what `JSON.stringify` of the same states gives (test/alerts/snapshot-text.test.ts),
 * so files written before and after this change read the same.
 */

/** Per-entry texts, by entry identity. One per engine; entries no longer referenced are collected. */
export interface FragmentCache {
  readonly texts: WeakMap<object, { readonly key: string; readonly text: string }>;
  /** Entries serialised since start (cache misses), and entries whose cached text was reused. */
  serialised: number;
  reused: number;
}

export function createFragmentCache(): FragmentCache {
  return { texts: new WeakMap(), serialised: 0, reused: 0 };
}

/** A map captured at the cut: its keys and the entries they held then. */
export interface MapPart {
  readonly keys: readonly string[];
  readonly values: readonly unknown[];
  readonly cache: FragmentCache;
}

/** Parts captured when the slicer reaches them, in a turn of their own (one rule's state). */
export interface LazyPart {
  readonly capture: () => CutPart[];
}

/** JSON text already made, a captured map still to serialise, or parts still to capture. Concatenated in order. */
export type CutPart = string | MapPart | LazyPart;

/** Captures a map (a plain object of entries) at this instant. */
export function mapPart(map: Record<string, unknown>, cache: FragmentCache): MapPart {
  // for-in enumerates own enumerable string keys in JSON.stringify's order (the state objects have
  // no inherited enumerable keys: isPlainObject). For 10,000 entries it cost about 1.5 ms of CPU
  // where Object.values alone took 4 ms (a dictionary-mode object).
  const keys: string[] = [];
  const values: unknown[] = [];
  for (const key in map) {
    keys.push(key);
    values.push(map[key]);
  }
  return { keys, values, cache };
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * The parts of one rule state. `maps` names the state's fields that are per-entry copy-on-write
 * maps; `''` means the state itself is one. Anything else (and a state that is not a plain object)
 * is serialised whole at the cut. Key order and omissions are JSON.stringify's.
 */
export function stateParts(state: unknown, maps: readonly string[] | undefined, cache: FragmentCache): CutPart[] {
  if (maps === undefined || maps.length === 0 || !isPlainObject(state) || typeof (state as { toJSON?: unknown }).toJSON === 'function') {
    const text = JSON.stringify(state);
    return text === undefined ? [] : [text];
  }
  if (maps.includes('')) return [mapPart(state, cache)];
  const out: CutPart[] = [];
  let open = '{';
  for (const key of Object.keys(state)) {
    const v = state[key];
    if (maps.includes(key) && isPlainObject(v) && typeof (v as { toJSON?: unknown }).toJSON !== 'function') {
      out.push(`${open}${JSON.stringify(key)}:`, mapPart(v, cache));
      open = ',';
      continue;
    }
    const text = JSON.stringify(v);
    if (text === undefined) continue;
    out.push(`${open}${JSON.stringify(key)}:${text}`);
    open = ',';
  }
  out.push(open === '{' ? '{}' : '}');
  return out;
}

/** Bounds of one slice: it stops after emitting this many characters or visiting this many entries. */
export interface SliceBudget {
  readonly chars: number;
  readonly entries: number;
}

/**
 * 128 K characters: about 1 ms of JSON.stringify where nothing is cached (5.6 MB took 40–65 ms CPU on
 * the loaded 2-core machine); 2,048 entries bound a slice of cache hits (a WeakMap lookup and a
 * share of the chunk's join each: about 0.25 µs, measured by bench/snapshot-cost.ts).
 */
export const DEFAULT_SLICE: SliceBudget = { chars: 128 * 1024, entries: 2048 };

/**
 * The text of one captured entry with a leading comma (`,"key":value`; the first entry of a map
 * drops it): cached by the entry's identity when it is an object, so a hit allocates nothing.
 */
function entryText(key: string, value: unknown, cache: FragmentCache): string | undefined {
  if (typeof value === 'object' && value !== null) {
    const hit = cache.texts.get(value);
    if (hit !== undefined && hit.key === key) {
      cache.reused++;
      return hit.text;
    }
    const json = JSON.stringify(value);
    cache.serialised++;
    if (json === undefined) return undefined;
    const text = `,${JSON.stringify(key)}:${json}`;
    cache.texts.set(value, { key, text });
    return text;
  }
  const json = JSON.stringify(value);
  return json === undefined ? undefined : `,${JSON.stringify(key)}:${json}`;
}

/**
 * The cut's text in chunks, one per `next()`: each call does at most one slice of work (`budget`).
 * Concatenated, the chunks are the JSON text.
 */
export function* sliceCut(parts: readonly CutPart[], budget: SliceBudget = DEFAULT_SLICE): Generator<string, void, void> {
  let chunk: string[] = [];
  let chars = 0;
  let entries = 0;
  const flush = (): string => {
    const text = chunk.join('');
    chunk = [];
    chars = 0;
    entries = 0;
    return text;
  };
  function* walk(list: readonly CutPart[]): Generator<string, void, void> {
    for (const part of list) {
      if (typeof part === 'string') {
        chunk.push(part);
        chars += part.length;
        if (chars >= budget.chars) yield flush();
        continue;
      }
      if ('capture' in part) {
        // A capture starts its own turn when this one already did work; capturing a map counts its
        // entries against the budget (its cost is one pass over them).
        if (chars > 0 || entries > 0) yield flush();
        const captured = part.capture();
        for (const c of captured) if (typeof c === 'object' && 'keys' in c) entries += c.keys.length;
        yield* walk(captured);
        continue;
      }
      chunk.push('{');
      let first = true;
      const { keys, values, cache } = part;
      for (let i = 0; i < keys.length; i++) {
        const text = entryText(keys[i] as string, values[i], cache);
        entries++;
        if (text !== undefined) {
          chunk.push(first ? text.slice(1) : text);
          first = false;
          chars += text.length;
        }
        if (chars >= budget.chars || entries >= budget.entries) yield flush();
      }
      chunk.push('}');
      chars++;
    }
  }
  yield* walk(parts);
  if (chunk.length > 0) yield flush();
}

/** The whole text at once (for callers that need it synchronously: `Engine.snapshotJson`). */
export function cutText(parts: readonly CutPart[]): string {
  let text = '';
  for (const chunk of sliceCut(parts, { chars: Infinity, entries: Infinity })) text += chunk;
  return text;
}

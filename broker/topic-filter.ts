/**
 * MQTT topic-filter arithmetic, pure. Wildcards per [MQTT-4.7.1]: `+` matches exactly one level,
 * `#` matches the rest (and must be the last level, [MQTT-4.7.1-2]).
 */

/** True when `filter` is a syntactically valid MQTT filter [MQTT-4.7.1-2], [MQTT-4.7.1-3]. */
export function isValidFilter(filter: string): boolean {
  if (filter.length === 0) return false;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return false;
    if (level.includes('+') && level !== '+') return false;
  }
  return true;
}

export function hasWildcard(topic: string): boolean {
  return topic.includes('+') || topic.includes('#');
}

/** Does the concrete topic `topic` match `filter`? */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * Is every topic matched by `inner` also matched by `outer`? Used so a service may subscribe to a
 * narrower filter than its grant (e.g. one home's alerts) but never a wider one.
 */
export function filterWithin(inner: string, outer: string): boolean {
  const a = inner.split('/');
  const b = outer.split('/');
  for (let i = 0; i < b.length; i++) {
    const o = b[i];
    if (o === '#') return true;
    const n = a[i];
    if (n === undefined) return false;
    if (n === '#') return false; // inner reaches deeper levels than outer allows
    if (o === '+') continue;
    if (n === '+' || n !== o) return false;
  }
  return a.length === b.length;
}

/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), enough to check what
 * our processes serve: every line is a `# HELP`, a `# TYPE` or a sample `name{label="value",…} value`;
 * each family has one HELP and one TYPE, before its samples; every sample belongs to a typed family
 * (a histogram's `_bucket`, `_sum`, `_count` included); label values are properly escaped.
 * prom-client ships no parser, so this is ours; it throws naming the first bad line.
 */
export interface Exposition {
  readonly types: ReadonlyMap<string, string>;
  readonly samples: ReadonlyArray<{ readonly name: string; readonly labels: Readonly<Record<string, string>>; readonly value: number }>;
  /** The one sample of `name` whose labels include `labels`; throws if none or several. */
  value(name: string, labels?: Readonly<Record<string, string>>): number;
  /** Sum over the samples of `name` whose labels include `labels` (0 when none). */
  sum(name: string, labels?: Readonly<Record<string, string>>): number;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL_NAME = '[a-zA-Z_][a-zA-Z0-9_]*';
const LABEL_VALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
// Go's ParseFloat, which Prometheus uses, takes NaN and Inf in any case (prom-client writes `Nan`).
const VALUE = '(?:[+-]?(?:\\d+\\.?\\d*(?:[eE][+-]?\\d+)?|\\.\\d+(?:[eE][+-]?\\d+)?)|[+-]?[Ii][Nn][Ff]|[Nn][Aa][Nn])';
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL_NAME}=${LABEL_VALUE})(?:,${LABEL_NAME}=${LABEL_VALUE})*,?)?\\})? (${VALUE})(?: (-?\\d+))?$`);
const LABEL_RE = new RegExp(`(${LABEL_NAME})=(${LABEL_VALUE})`, 'g');
const HELP_RE = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE_RE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

function unescape(quoted: string): string {
  return quoted.slice(1, -1).replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

function familyOf(name: string, types: ReadonlyMap<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const t = types.get(base);
    if (t === 'histogram' || (t === 'summary' && suffix !== '_bucket')) return base;
  }
  return undefined;
}

function includes(have: Readonly<Record<string, string>>, want: Readonly<Record<string, string>>): boolean {
  return Object.entries(want).every(([k, v]) => have[k] === v);
}

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const withSamples = new Set<string>();
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('exposition does not end with a newline');
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line === '') return;
    let m = HELP_RE.exec(line);
    if (m !== null) {
      const name = m[1] as string;
      if (helps.has(name)) throw new Error(`second HELP for ${name}, ${where}`);
      helps.add(name);
      return;
    }
    m = TYPE_RE.exec(line);
    if (m !== null) {
      const name = m[1] as string;
      if (types.has(name)) throw new Error(`second TYPE for ${name}, ${where}`);
      if (withSamples.has(name)) throw new Error(`TYPE after samples of ${name}, ${where}`);
      types.set(name, m[2] as string);
      return;
    }
    if (line.startsWith('#')) throw new Error(`comment that is neither HELP nor TYPE, ${where}`);
    m = SAMPLE_RE.exec(line);
    if (m === null) throw new Error(`not a sample, ${where}`);
    const name = m[1] as string;
    const family = familyOf(name, types);
    if (family === undefined) throw new Error(`sample of an untyped family, ${where}`);
    withSamples.add(family);
    const labels: Record<string, string> = {};
    for (const lm of (m[2] ?? '').matchAll(LABEL_RE)) {
      const key = lm[1] as string;
      if (key in labels) throw new Error(`label ${key} twice, ${where}`);
      labels[key] = unescape(lm[2] as string);
    }
    const raw = m[3] as string;
    const value = /inf$/i.test(raw) ? (raw.startsWith('-') ? -Infinity : Infinity) : Number(raw);
    samples.push({ name, labels, value });
  });
  for (const name of types.keys()) if (!helps.has(name)) throw new Error(`family ${name} has no HELP`);
  const matching = (name: string, labels: Readonly<Record<string, string>>) => samples.filter((s) => s.name === name && includes(s.labels, labels));
  return {
    types,
    samples,
    value(name, labels = {}) {
      const found = matching(name, labels);
      if (found.length !== 1) throw new Error(`${found.length} samples of ${name}${JSON.stringify(labels)}`);
      return (found[0] as { value: number }).value;
    },
    sum: (name, labels = {}) => matching(name, labels).reduce((a, s) => a + s.value, 0),
  };
}

/** GET /metrics of a process, checked: 200, the exposition content type, a parseable body. */
export async function scrape(baseUrl: string): Promise<Exposition> {
  const res = await fetch(`${baseUrl}/metrics`);
  if (res.status !== 200) throw new Error(`GET ${baseUrl}/metrics: ${res.status}`);
  const type = res.headers.get('content-type') ?? '';
  if (!type.startsWith('text/plain') || !type.includes('version=0.0.4')) throw new Error(`GET ${baseUrl}/metrics: content-type ${type}`);
  return parseExposition(await res.text());
}

export async function healthz(baseUrl: string): Promise<{ status: number; body: { status: string; problems: string[] } }> {
  const res = await fetch(`${baseUrl}/healthz`);
  return { status: res.status, body: (await res.json()) as { status: string; problems: string[] } };
}

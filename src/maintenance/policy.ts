/**
 * Keep rules (restic's `forget` policy, docs/maintenance.md "forget"): which snapshots of a group stay.
 * A pure module: snapshots in, decisions out, no storage access, so every rule is tested on its own.
 * Calendar buckets (hour, day, ISO week, month, year) are taken in UTC, the time zone snapshot times
 * are stored in; restic takes them in the time zone each snapshot was made in.
 */

/** What a rule needs of a snapshot. */
export interface PolicySnapshot {
  /** RFC 3339 time. */
  time: string;
  tags: string[];
}

/** A restic duration: years, months, days and hours (`1y5m7d2h`), counted back from the newest snapshot. */
export interface KeepDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

/** Keep this many of each kind; -1 keeps all of them (`unlimited`), 0 turns the rule off. */
export interface KeepCounts {
  last: number;
  hourly: number;
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
}

/** A whole policy: counts, durations and tag lists (a snapshot with every tag of one list is kept). */
export interface KeepPolicy extends KeepCounts {
  within?: KeepDuration;
  withinHourly?: KeepDuration;
  withinDaily?: KeepDuration;
  withinWeekly?: KeepDuration;
  withinMonthly?: KeepDuration;
  withinYearly?: KeepDuration;
  tags: string[][];
}

/** Why a snapshot stays, and each counter after it was counted (restic's KeepReason). */
export interface KeepReason<T> {
  snapshot: T;
  matches: string[];
  counters: Partial<KeepCounts>;
}

/** The outcome for one group: what stays (newest first), what goes, and why each kept one stays. */
export interface PolicyResult<T> {
  keep: T[];
  remove: T[];
  reasons: KeepReason<T>[];
}

const COUNTS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
const WITHINS = ['withinHourly', 'withinDaily', 'withinWeekly', 'withinMonthly', 'withinYearly'] as const;

/** A policy that keeps nothing by any rule. */
export function emptyPolicy(): KeepPolicy {
  return { last: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, tags: [] };
}

/** Whether no rule is set: restic refuses to forget with such a policy rather than remove everything. */
export function policyIsEmpty(p: KeepPolicy): boolean {
  return COUNTS.every((k) => p[k] === 0) && p.within === undefined && WITHINS.every((k) => p[k] === undefined) && p.tags.length === 0;
}

/** Parse `1y5m7d2h` (each unit at most once, any of them); undefined when malformed. */
export function parseKeepDuration(text: string): KeepDuration | undefined {
  const t = text.trim();
  if (!/^(\d+[ymdh])+$/.test(t)) return undefined;
  const d: KeepDuration = { years: 0, months: 0, days: 0, hours: 0 };
  const seen = new Set<string>();
  for (const m of t.matchAll(/(\d+)([ymdh])/g)) {
    if (seen.has(m[2]!)) return undefined;
    seen.add(m[2]!);
    const n = Number(m[1]);
    if (!Number.isSafeInteger(n)) return undefined;
    if (m[2] === 'y') d.years = n;
    else if (m[2] === 'm') d.months = n;
    else if (m[2] === 'd') d.days = n;
    else d.hours = n;
  }
  return d;
}

/** A duration as restic prints it: `1y1m1d` (zero parts left out). */
export function formatKeepDuration(d: KeepDuration): string {
  return `${d.years ? `${d.years}y` : ''}${d.months ? `${d.months}m` : ''}${d.days ? `${d.days}d` : ''}${d.hours ? `${d.hours}h` : ''}` || '0h';
}

/** The moment `d` before `from` (ms): calendar arithmetic as Go's AddDate, then whole hours. */
function before(from: number, d: KeepDuration): number {
  const t = new Date(from);
  const shifted = Date.UTC(t.getUTCFullYear() - d.years, t.getUTCMonth() - d.months, t.getUTCDate() - d.days, t.getUTCHours(), t.getUTCMinutes(), t.getUTCSeconds(), t.getUTCMilliseconds());
  return shifted - d.hours * 3_600_000;
}

/** ISO 8601 week-numbering year and week of a UTC time, as YYYYWW. */
function isoWeek(ms: number): number {
  const t = new Date(ms);
  const day = Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate());
  const weekday = (t.getUTCDay() + 6) % 7; // Monday 0
  const thursday = new Date(day + (3 - weekday) * 86_400_000);
  const year = thursday.getUTCFullYear();
  const week = 1 + Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * 86_400_000));
  return year * 100 + week;
}

type Bucketer = (ms: number, nr: number) => number;
const hourOf: Bucketer = (ms) => {
  const t = new Date(ms);
  return t.getUTCFullYear() * 1_000_000 + (t.getUTCMonth() + 1) * 10_000 + t.getUTCDate() * 100 + t.getUTCHours();
};
const dayOf: Bucketer = (ms) => {
  const t = new Date(ms);
  return t.getUTCFullYear() * 10_000 + (t.getUTCMonth() + 1) * 100 + t.getUTCDate();
};
const weekOf: Bucketer = (ms) => isoWeek(ms);
const monthOf: Bucketer = (ms) => {
  const t = new Date(ms);
  return t.getUTCFullYear() * 100 + t.getUTCMonth() + 1;
};
const yearOf: Bucketer = (ms) => new Date(ms).getUTCFullYear();
// Every snapshot is a bucket of its own for --keep-last.
const each: Bucketer = (_ms, nr) => nr;

const BUCKETERS: Record<(typeof COUNTS)[number], Bucketer> = { last: each, hourly: hourOf, daily: dayOf, weekly: weekOf, monthly: monthOf, yearly: yearOf };
const COUNT_REASON: Record<(typeof COUNTS)[number], string> = { last: 'last snapshot', hourly: 'hourly snapshot', daily: 'daily snapshot', weekly: 'weekly snapshot', monthly: 'monthly snapshot', yearly: 'yearly snapshot' };
const WITHIN_BUCKETERS: Record<(typeof WITHINS)[number], Bucketer> = { withinHourly: hourOf, withinDaily: dayOf, withinWeekly: weekOf, withinMonthly: monthOf, withinYearly: yearOf };
const WITHIN_REASON: Record<(typeof WITHINS)[number], string> = { withinHourly: 'hourly within', withinDaily: 'daily within', withinWeekly: 'weekly within', withinMonthly: 'monthly within', withinYearly: 'yearly within' };

/** Whether a snapshot has every tag of `list`. */
function hasTags(s: PolicySnapshot, list: string[]): boolean {
  return list.every((t) => s.tags.includes(t));
}

/**
 * Apply `p` to one group (restic's ApplyPolicy): newest first, each snapshot is kept when it has a kept
 * tag list, is within `within` of the newest snapshot (not counting snapshots in the future of `now`),
 * or opens a new bucket of a rule with counts left; the oldest snapshot also stays for every rule that
 * still has counts left, so a short history is kept whole. Equal times keep their input order.
 */
export function applyPolicy<T extends PolicySnapshot>(list: readonly T[], p: KeepPolicy, now = Date.now()): PolicyResult<T> {
  const sorted = list.map((s, i) => ({ s, i, ms: Date.parse(s.time) })).sort((a, b) => b.ms - a.ms || a.i - b.i);
  const result: PolicyResult<T> = { keep: [], remove: [], reasons: [] };
  if (sorted.length === 0) return result;
  const latest = sorted.reduce((m, x) => (x.ms > m && x.ms < now ? x.ms : m), 0);
  const counts = COUNTS.map((k) => ({ key: k, left: p[k], last: -1 }));
  const withins = WITHINS.map((k) => ({ key: k, within: p[k], last: -1 }));
  sorted.forEach(({ s, ms }, nr) => {
    const matches: string[] = [];
    const oldest = nr === sorted.length - 1;
    for (const list of p.tags) if (hasTags(s, list)) matches.push(`has tags [${list.join(', ')}]`);
    if (p.within && ms > before(latest, p.within)) matches.push(`within ${formatKeepDuration(p.within)}`);
    for (const b of counts) {
      if (b.left === 0) continue;
      const value = BUCKETERS[b.key](ms, nr);
      if (value === b.last && !oldest) continue;
      matches.push(value === b.last ? `oldest ${COUNT_REASON[b.key]}` : COUNT_REASON[b.key]);
      b.last = value;
      if (b.left > 0) b.left--;
    }
    for (const b of withins) {
      if (!b.within || !(ms > before(latest, b.within))) continue;
      const value = WITHIN_BUCKETERS[b.key](ms, nr);
      if (value === b.last && !oldest) continue;
      matches.push(`${value === b.last ? 'oldest ' : ''}${WITHIN_REASON[b.key]} ${formatKeepDuration(b.within)}`);
      b.last = value;
    }
    if (matches.length === 0) {
      result.remove.push(s);
      return;
    }
    const counters: Partial<KeepCounts> = {};
    for (const b of counts) if (b.left !== 0) counters[b.key] = b.left;
    result.keep.push(s);
    result.reasons.push({ snapshot: s, matches, counters });
  });
  return result;
}

/** What a group is made of: restic's `--group-by` (host, paths, tags) and our `source`. */
export type GroupField = 'host' | 'source' | 'paths' | 'tags';
const GROUP_FIELDS: readonly GroupField[] = ['host', 'source', 'paths', 'tags'];

/** Parse `--group-by` (`source,host` by default; `''` puts every snapshot in one group); undefined when malformed. */
export function parseGroupBy(text: string): GroupField[] | undefined {
  const fields = text
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f !== '');
  if (!fields.every((f): f is GroupField => (GROUP_FIELDS as readonly string[]).includes(f))) return undefined;
  return GROUP_FIELDS.filter((f) => fields.includes(f));
}

/** What groups need of a snapshot. */
export interface GroupedSnapshot extends PolicySnapshot {
  hostname: string;
  source: string;
  paths: string[];
}

/** The values that made a group (only the fields grouped by). */
export interface GroupKey {
  hostname?: string;
  source?: string;
  paths?: string[];
  tags?: string[];
}

/** Split snapshots into groups by `fields`, in the order groups first appear; lists compare sorted. */
export function groupSnapshots<T extends GroupedSnapshot>(list: readonly T[], fields: readonly GroupField[]): { key: GroupKey; snapshots: T[] }[] {
  const groups = new Map<string, { key: GroupKey; snapshots: T[] }>();
  for (const s of list) {
    const key: GroupKey = {};
    if (fields.includes('host')) key.hostname = s.hostname;
    if (fields.includes('source')) key.source = s.source;
    if (fields.includes('paths')) key.paths = [...s.paths].sort();
    if (fields.includes('tags')) key.tags = [...s.tags].sort();
    const k = JSON.stringify(key);
    let group = groups.get(k);
    if (!group) groups.set(k, (group = { key, snapshots: [] }));
    group.snapshots.push(s);
  }
  return [...groups.values()];
}

/** Which snapshots a command looks at: restic's --host, --tag (each a comma list that must all match) and our --source. */
export interface SnapshotFilter {
  hosts: string[];
  tags: string[][];
  sources: string[];
}

/** Whether `s` passes the filter (an empty part lets everything through). */
export function matchesFilter(s: GroupedSnapshot, f: SnapshotFilter): boolean {
  if (f.hosts.length > 0 && !f.hosts.includes(s.hostname)) return false;
  if (f.sources.length > 0 && !f.sources.includes(s.source)) return false;
  return f.tags.length === 0 || f.tags.some((list) => hasTags(s, list));
}

/** Tag lists from flag values: each value is a comma list whose tags must all be present. */
export function parseTagLists(values: readonly string[]): string[][] {
  return values.map((v) => v.split(',').map((t) => t.trim()).filter((t) => t !== '')).filter((l) => l.length > 0);
}

/** The policy in words, as restic prints it before applying it. */
export function describePolicy(p: KeepPolicy): string {
  const words = { last: 'latest', hourly: 'hourly', daily: 'daily', weekly: 'weekly', monthly: 'monthly', yearly: 'yearly' };
  const counts = COUNTS.filter((k) => p[k] !== 0).map((k) => (p[k] < 0 ? `all ${words[k]}` : `${p[k]} ${words[k]}`));
  const parts: string[] = [];
  if (counts.length) parts.push(`${counts.join(', ')} snapshots`);
  for (const k of WITHINS) {
    const d = p[k];
    if (d) parts.push(`${WITHIN_REASON[k].replace(' within', '')} snapshots within ${formatKeepDuration(d)}`);
  }
  if (p.tags.length) parts.push(`all snapshots with tags ${p.tags.map((l) => `[${l.join(', ')}]`).join(' or ')}`);
  if (p.within) parts.push(`all snapshots within ${formatKeepDuration(p.within)} of the newest`);
  return `keep ${parts.join(', ')}`;
}

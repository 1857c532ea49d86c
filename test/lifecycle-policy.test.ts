import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  applyPolicy,
  describePolicy,
  emptyPolicy,
  groupSnapshots,
  matchesFilter,
  parseGroupBy,
  parseKeepDuration,
  parseTagLists,
  policyIsEmpty,
  type KeepPolicy,
} from '../src/maintenance/policy.js';

/**
 * The snapshot times of restic's own policy test (internal/data/snapshot_policy_test.go), in its order:
 * "time|tags". The expectations below are what restic's golden files say for the same policies.
 */
const RESTIC_INPUT = [
  '2014-09-01 10:20:30', '2014-09-02 10:20:30', '2014-09-05 10:20:30', '2014-09-06 10:20:30', '2014-09-08 10:20:30', '2014-09-09 10:20:30',
  '2014-09-10 10:20:30', '2014-09-11 10:20:30', '2014-09-20 10:20:30', '2014-09-22 10:20:30', '2014-08-08 10:20:30', '2014-08-10 10:20:30',
  '2014-08-12 10:20:30', '2014-08-13 10:20:30', '2014-08-13 10:20:30.1', '2014-08-15 10:20:30', '2014-08-18 10:20:30', '2014-08-20 10:20:30',
  '2014-08-21 10:20:30', '2014-08-22 10:20:30', '2014-10-01 10:20:30|foo', '2014-10-02 10:20:30|foo', '2014-10-05 10:20:30|foo', '2014-10-06 10:20:30|foo',
  '2014-10-08 10:20:30|foo', '2014-10-09 10:20:30|foo', '2014-10-10 10:20:30|foo', '2014-10-11 10:20:30|foo', '2014-10-20 10:20:30|foo', '2014-10-22 10:20:30|foo',
  '2014-11-08 10:20:30|foo', '2014-11-10 10:20:30|foo', '2014-11-12 10:20:30|foo', '2014-11-13 10:20:30|foo', '2014-11-13 10:20:30.1|bar', '2014-11-15 10:20:30|foo,bar',
  '2014-11-18 10:20:30', '2014-11-20 10:20:30', '2014-11-21 10:20:30', '2014-11-22 10:20:30', '2015-09-01 10:20:30', '2015-09-02 10:20:30',
  '2015-09-05 10:20:30', '2015-09-06 10:20:30', '2015-09-08 10:20:30', '2015-09-09 10:20:30', '2015-09-10 10:20:30', '2015-09-11 10:20:30',
  '2015-09-20 10:20:30', '2015-09-22 10:20:30', '2015-08-08 10:20:30', '2015-08-10 10:20:30', '2015-08-12 10:20:30', '2015-08-13 10:20:30',
  '2015-08-13 10:20:30.1', '2015-08-15 10:20:30', '2015-08-18 10:20:30', '2015-08-20 10:20:30', '2015-08-21 10:20:30', '2015-08-22 10:20:30',
  '2015-10-01 10:20:30', '2015-10-02 10:20:30', '2015-10-05 10:20:30', '2015-10-06 10:20:30', '2015-10-08 10:20:30', '2015-10-09 10:20:30',
  '2015-10-10 10:20:30', '2015-10-11 10:20:30', '2015-10-20 10:20:30', '2015-10-22 10:20:30', '2015-10-22 10:20:30', '2015-10-22 10:20:30|foo,bar',
  '2015-10-22 10:20:30|foo,bar', '2015-10-22 10:20:30|foo,bar', '2015-11-08 10:20:30', '2015-11-10 10:20:30', '2015-11-12 10:20:30', '2015-11-13 10:20:30',
  '2015-11-13 10:20:30.1', '2015-11-15 10:20:30', '2015-11-18 10:20:30', '2015-11-20 10:20:30', '2015-11-21 10:20:30', '2015-11-22 10:20:30',
  '2016-01-01 01:02:03', '2016-01-01 01:03:03', '2016-01-01 07:08:03', '2016-01-03 07:02:03', '2016-01-04 10:23:03', '2016-01-04 11:23:03',
  '2016-01-04 12:23:03', '2016-01-04 12:24:03', '2016-01-04 12:28:03', '2016-01-04 12:30:03', '2016-01-04 16:23:03', '2016-01-05 09:02:03',
  '2016-01-06 08:02:03', '2016-01-07 10:02:03', '2016-01-08 20:02:03', '2016-01-09 21:02:03', '2016-01-12 21:02:03', '2016-01-12 21:08:03',
  '2016-01-18 12:02:03',
];

const snapshots = RESTIC_INPUT.map((line) => {
  const [time, tags = ''] = line.split('|');
  return { time: `${time!.replace(' ', 'T')}Z`, tags: tags ? tags.split(',') : [] };
});

const WITHINS = ['within', 'withinHourly', 'withinDaily', 'withinWeekly', 'withinMonthly', 'withinYearly'] as const;

/** A policy as the cases write it: durations in restic's notation. */
type PolicyInput = Partial<Omit<KeepPolicy, (typeof WITHINS)[number]>> & Partial<Record<(typeof WITHINS)[number], string>>;

/** A policy from a few fields. */
function policy(p: PolicyInput): KeepPolicy {
  const { within, withinHourly, withinDaily, withinWeekly, withinMonthly, withinYearly, ...counts } = p;
  const out: KeepPolicy = { ...emptyPolicy(), ...counts };
  const durations = { within, withinHourly, withinDaily, withinWeekly, withinMonthly, withinYearly };
  for (const k of WITHINS) {
    const v = durations[k];
    if (v !== undefined) out[k] = parseKeepDuration(v);
  }
  return out;
}

/** How a kept snapshot is written in the expectations: "2016-01-18 12:02:03" (with ".1" and "|tags" where restic's has them). */
function shown(s: { time: string; tags: string[] }): string {
  const t = s.time.replace('T', ' ').replace(/\.000Z$|Z$/, '').replace(/\.100$/, '.1');
  return s.tags.length ? `${t}|${s.tags.join(',')}` : t;
}

/** One of restic's cases: the policy, how many stay, the oldest kept, the reasons of the newest and oldest kept, the oldest's counters. */
interface Case {
  p: PolicyInput;
  kept: number;
  oldest: string;
  first: string[];
  last: string[];
  counters?: Record<string, number>;
  /** Every kept snapshot, newest first, where restic's list is short enough to spell out. */
  all?: string[];
}

const CASES: Case[] = [
  { p: { last: 10 }, kept: 10, oldest: '2016-01-04 12:30:03', first: ['last snapshot'], last: ['last snapshot'] },
  { p: { last: 200 }, kept: 103, oldest: '2014-08-08 10:20:30', first: ['last snapshot'], last: ['last snapshot'], counters: { last: 97 } },
  { p: { hourly: 20 }, kept: 20, oldest: '2015-11-13 10:20:30.1', first: ['hourly snapshot'], last: ['hourly snapshot'] },
  { p: { daily: 3 }, kept: 3, oldest: '2016-01-09 21:02:03', first: ['daily snapshot'], last: ['daily snapshot'], all: ['2016-01-18 12:02:03', '2016-01-12 21:08:03', '2016-01-09 21:02:03'] },
  { p: { daily: 30 }, kept: 30, oldest: '2015-09-22 10:20:30', first: ['daily snapshot'], last: ['daily snapshot'] },
  { p: { last: 5, daily: 5 }, kept: 6, oldest: '2016-01-07 10:02:03', first: ['last snapshot', 'daily snapshot'], last: ['daily snapshot'] },
  { p: { weekly: 2 }, kept: 2, oldest: '2016-01-12 21:08:03', first: ['weekly snapshot'], last: ['weekly snapshot'] },
  { p: { daily: 3, weekly: 4 }, kept: 4, oldest: '2016-01-03 07:02:03', first: ['daily snapshot', 'weekly snapshot'], last: ['weekly snapshot'], all: ['2016-01-18 12:02:03', '2016-01-12 21:08:03', '2016-01-09 21:02:03', '2016-01-03 07:02:03'] },
  { p: { monthly: 6 }, kept: 6, oldest: '2014-11-22 10:20:30', first: ['monthly snapshot'], last: ['monthly snapshot'], all: ['2016-01-18 12:02:03', '2015-11-22 10:20:30', '2015-10-22 10:20:30', '2015-09-22 10:20:30', '2015-08-22 10:20:30', '2014-11-22 10:20:30'] },
  { p: { yearly: 10 }, kept: 4, oldest: '2014-08-08 10:20:30', first: ['yearly snapshot'], last: ['oldest yearly snapshot'], counters: { yearly: 6 } },
  {
    p: { daily: 7, weekly: 2, monthly: 3, yearly: 10 },
    kept: 11,
    oldest: '2014-08-08 10:20:30',
    first: ['daily snapshot', 'weekly snapshot', 'monthly snapshot', 'yearly snapshot'],
    last: ['oldest yearly snapshot'],
    counters: { yearly: 6 },
    all: ['2016-01-18 12:02:03', '2016-01-12 21:08:03', '2016-01-09 21:02:03', '2016-01-08 20:02:03', '2016-01-07 10:02:03', '2016-01-06 08:02:03', '2016-01-05 09:02:03', '2015-11-22 10:20:30', '2015-10-22 10:20:30', '2014-11-22 10:20:30', '2014-08-08 10:20:30'],
  },
  { p: { tags: [['foo']] }, kept: 18, oldest: '2014-10-01 10:20:30|foo', first: ['has tags [foo]'], last: ['has tags [foo]'] },
  { p: { tags: [['foo', 'bar']] }, kept: 4, oldest: '2014-11-15 10:20:30|foo,bar', first: ['has tags [foo, bar]'], last: ['has tags [foo, bar]'] },
  { p: { tags: [['foo'], ['bar']] }, kept: 19, oldest: '2014-10-01 10:20:30|foo', first: ['has tags [foo]', 'has tags [bar]'], last: ['has tags [foo]'] },
  { p: { within: '1d' }, kept: 1, oldest: '2016-01-18 12:02:03', first: ['within 1d'], last: ['within 1d'] },
  { p: { within: '7d' }, kept: 3, oldest: '2016-01-12 21:02:03', first: ['within 7d'], last: ['within 7d'] },
  { p: { within: '1m14d' }, kept: 19, oldest: '2016-01-01 01:02:03', first: ['within 1m14d'], last: ['within 1m14d'] },
  { p: { within: '1y1d1m' }, kept: 63, oldest: '2015-08-08 10:20:30', first: ['within 1y1m1d'], last: ['within 1y1m1d'] },
  { p: { within: '13d23h' }, kept: 9, oldest: '2016-01-04 16:23:03', first: ['within 13d23h'], last: ['within 13d23h'] },
  { p: { within: '2m2h' }, kept: 23, oldest: '2015-11-18 10:20:30', first: ['within 2m2h'], last: ['within 2m2h'] },
  { p: { within: '1y2m3d3h' }, kept: 68, oldest: '2014-11-15 10:20:30|foo,bar', first: ['within 1y2m3d3h'], last: ['within 1y2m3d3h'] },
  { p: { withinHourly: '1y2m3d3h' }, kept: 57, oldest: '2014-11-15 10:20:30|foo,bar', first: ['hourly within 1y2m3d3h'], last: ['hourly within 1y2m3d3h'] },
  { p: { withinDaily: '1y2m3d3h' }, kept: 53, oldest: '2014-11-15 10:20:30|foo,bar', first: ['daily within 1y2m3d3h'], last: ['daily within 1y2m3d3h'] },
  { p: { withinWeekly: '1y2m3d3h' }, kept: 19, oldest: '2014-11-15 10:20:30|foo,bar', first: ['weekly within 1y2m3d3h'], last: ['weekly within 1y2m3d3h'] },
  { p: { withinMonthly: '1y2m3d3h' }, kept: 6, oldest: '2014-11-22 10:20:30', first: ['monthly within 1y2m3d3h'], last: ['monthly within 1y2m3d3h'] },
  { p: { withinYearly: '1y2m3d3h' }, kept: 3, oldest: '2014-11-22 10:20:30', first: ['yearly within 1y2m3d3h'], last: ['yearly within 1y2m3d3h'] },
  {
    p: { within: '1h', withinHourly: '1d', withinDaily: '7d', withinWeekly: '1m', withinMonthly: '1y', withinYearly: '9999y' },
    kept: 10,
    oldest: '2014-08-08 10:20:30',
    first: ['within 1h', 'hourly within 1d', 'daily within 7d', 'weekly within 1m', 'monthly within 1y', 'yearly within 9999y'],
    last: ['oldest yearly within 9999y'],
  },
  { p: { last: -1 }, kept: 103, oldest: '2014-08-08 10:20:30', first: ['last snapshot'], last: ['last snapshot'], counters: { last: -1 } },
  { p: { last: -1, hourly: -1 }, kept: 103, oldest: '2014-08-08 10:20:30', first: ['last snapshot', 'hourly snapshot'], last: ['last snapshot', 'hourly snapshot'], counters: { last: -1, hourly: -1 } },
  { p: { hourly: -1 }, kept: 90, oldest: '2014-08-08 10:20:30', first: ['hourly snapshot'], last: ['hourly snapshot'], counters: { hourly: -1 } },
  { p: { daily: 3, weekly: 2, monthly: -1, yearly: -1 }, kept: 12, oldest: '2014-08-08 10:20:30', first: ['daily snapshot', 'weekly snapshot', 'monthly snapshot', 'yearly snapshot'], last: ['oldest monthly snapshot', 'oldest yearly snapshot'], counters: { monthly: -1, yearly: -1 } },
];

describe('keep rules (restic examples)', () => {
  for (const c of CASES) {
    it(`${describePolicy(policy(c.p))}: ${c.kept} of ${RESTIC_INPUT.length} stay`, () => {
      const result = applyPolicy(snapshots, policy(c.p));
      assert.equal(result.keep.length + result.remove.length, snapshots.length);
      assert.equal(result.keep.length, c.kept);
      assert.equal(result.reasons.length, c.kept);
      assert.equal(shown(result.keep.at(-1)!), c.oldest);
      assert.deepEqual(result.reasons[0]!.matches, c.first);
      assert.deepEqual(result.reasons.at(-1)!.matches, c.last);
      assert.deepEqual(result.reasons.at(-1)!.counters, c.counters ?? {});
      if (c.all) assert.deepEqual(result.keep.map(shown), c.all);
      // Newest first, and nothing both kept and removed.
      const kept = result.keep.map((s) => Date.parse(s.time));
      assert.deepEqual(kept, [...kept].sort((a, b) => b - a));
      assert.ok(result.keep.every((s) => !result.remove.includes(s)));
    });
  }

  it('an empty policy is reported as such (forget refuses it), a tag list or a duration is not', () => {
    assert.ok(policyIsEmpty(emptyPolicy()));
    assert.ok(!policyIsEmpty(policy({ tags: [['x']] })));
    assert.ok(!policyIsEmpty(policy({ within: '1d' })));
    assert.ok(!policyIsEmpty(policy({ yearly: -1 })));
  });

  it('within is measured from the newest snapshot that is not in the future', () => {
    const list = [{ time: '2030-01-01T00:00:00Z', tags: [] }, { time: '2020-01-02T00:00:00Z', tags: [] }, { time: '2020-01-01T12:00:00Z', tags: [] }, { time: '2019-12-30T00:00:00Z', tags: [] }];
    const result = applyPolicy(list, policy({ within: '1d' }), Date.parse('2021-01-01T00:00:00Z'));
    assert.deepEqual(result.keep.map((s) => s.time), ['2030-01-01T00:00:00Z', '2020-01-02T00:00:00Z', '2020-01-01T12:00:00Z']);
  });

  it('ISO weeks: a Sunday belongs to the week of the Monday before it, across a year end', () => {
    // 2016-01-03 is a Sunday of ISO week 2015-53; 2016-01-04 is the Monday of 2016-01.
    const list = [{ time: '2016-01-04T10:00:00Z', tags: [] }, { time: '2016-01-03T10:00:00Z', tags: [] }, { time: '2015-12-28T10:00:00Z', tags: [] }];
    assert.deepEqual(applyPolicy(list, policy({ weekly: 2 })).keep.map((s) => s.time), ['2016-01-04T10:00:00Z', '2016-01-03T10:00:00Z']);
  });
});

describe('durations, groups and filters', () => {
  it('parses restic durations and refuses malformed ones', () => {
    assert.deepEqual(parseKeepDuration('1y5m7d2h'), { years: 1, months: 5, days: 7, hours: 2 });
    assert.deepEqual(parseKeepDuration('2h7d'), { years: 0, months: 0, days: 7, hours: 2 });
    for (const bad of ['', '1w', '5', 'd', '1d1d', '-1d', '1.5d']) assert.equal(parseKeepDuration(bad), undefined, bad);
  });

  it('groups by source and host by default, by nothing with an empty --group-by', () => {
    const s = (hostname: string, source: string, tags: string[] = []) => ({ time: '2020-01-01T00:00:00Z', hostname, source, paths: [`/data/${source}`], tags });
    const list = [s('a', 'db'), s('b', 'db'), s('a', 'db', ['x']), s('a', 'www')];
    assert.deepEqual(parseGroupBy('source,host'), ['host', 'source']);
    assert.deepEqual(
      groupSnapshots(list, parseGroupBy('source,host')!).map((g) => [g.key, g.snapshots.length]),
      [
        [{ hostname: 'a', source: 'db' }, 2],
        [{ hostname: 'b', source: 'db' }, 1],
        [{ hostname: 'a', source: 'www' }, 1],
      ],
    );
    assert.deepEqual(groupSnapshots(list, parseGroupBy('')!).map((g) => g.snapshots.length), [4]);
    assert.deepEqual(groupSnapshots(list, parseGroupBy('tags')!).map((g) => [g.key, g.snapshots.length]), [[{ tags: [] }, 3], [{ tags: ['x'] }, 1]]);
    assert.equal(parseGroupBy('host,color'), undefined);
  });

  it('--tag a,b needs both tags; two --tag flags need either list', () => {
    const s = (tags: string[]) => ({ time: '2020-01-01T00:00:00Z', hostname: 'h', source: 's', paths: [], tags });
    const both = { hosts: [], sources: [], tags: parseTagLists(['a,b']) };
    const either = { hosts: [], sources: [], tags: parseTagLists(['a', 'b']) };
    assert.ok(matchesFilter(s(['a', 'b', 'c']), both));
    assert.ok(!matchesFilter(s(['a']), both));
    assert.ok(matchesFilter(s(['b']), either));
    assert.ok(!matchesFilter(s(['c']), either));
    assert.ok(!matchesFilter(s(['a']), { hosts: ['other'], sources: [], tags: [] }));
    assert.ok(matchesFilter(s([]), { hosts: ['h'], sources: ['s'], tags: [] }));
  });
});

describe('S3 policies per role (docs/iam)', () => {
  interface Statement {
    Effect: string;
    Action: string[];
    Resource: string;
  }
  const policy = (role: string) => JSON.parse(readFileSync(new URL(`../docs/iam/${role}.json`, import.meta.url), 'utf8')) as { Statement: Statement[] };
  /** Whether `role` may do `action` on object `key` of the repository (prefix cluster-a of bucket backups). */
  const may = (role: string, action: string, key: string) =>
    policy(role).Statement.some((s) => s.Effect === 'Allow' && s.Action.includes(action) && new RegExp(`^${s.Resource.replace(/[.]/g, '\\.').replace(/\*/g, '.*')}$`).test(`arn:aws:s3:::backups/cluster-a/${key}`));

  it('backup may read and add, and delete only locks; maintenance may delete; restore only reads', () => {
    for (const key of ['kbrackup.json', 'packs/ab/abcd', 'snapshots/app/x', 'index/1234']) {
      assert.ok(may('backup', 's3:GetObject', key) && may('backup', 's3:PutObject', key), key);
      assert.ok(!may('backup', 's3:DeleteObject', key), `backup must not delete ${key}`);
      assert.ok(may('maintenance', 's3:DeleteObject', key), `maintenance deletes ${key}`);
      assert.ok(may('restore', 's3:GetObject', key) && !may('restore', 's3:PutObject', key) && !may('restore', 's3:DeleteObject', key), key);
    }
    assert.ok(may('backup', 's3:DeleteObject', 'locks/5678'), 'a backup removes its own lock');
    for (const role of ['backup', 'maintenance', 'restore']) assert.ok(policy(role).Statement.some((s) => s.Action.includes('s3:ListBucket') && s.Resource === 'arn:aws:s3:::backups'), `${role} lists the bucket`);
  });
});

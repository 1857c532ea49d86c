// StrykerJS over the security- and integrity-critical modules (docs/TESTING.md "Mutation testing").
// One group per run (MUTATION_GROUP): each mutates a few modules and runs only the tests that import
// them from src/ in this process, so a mutant costs seconds, not a build (the CLI suites run dist/).
// scripts/mutation.sh runs every group.
const groups = {
  restore: { mutate: ['src/restore/safe-path.ts', 'src/restore/files-writer.ts'], tests: ['test/claims.restore.test.ts'] },
  metadata: {
    mutate: ['src/repo/credentials.ts', 'src/repo/tree/tree-reader.ts', 'src/repo/tree/entry.ts', 'src/repo/snapshot.ts', 'src/repo/layout.ts'],
    tests: ['test/claims.metadata.test.ts'],
  },
  content: { mutate: ['src/repo/content-reader.ts'], tests: ['test/claims.content.test.ts'] },
  // claims.content reads content through what keyring.ts hands out (the unsealing keys).
  trust: { mutate: ['src/repo/keyring.ts'], tests: ['test/claims.trust.test.ts', 'test/claims.content.test.ts'] },
  crypto: { mutate: ['src/crypto/seipd-decrypt.ts', 'src/crypto/envelope.ts'], tests: ['test/seipd.test.ts', 'test/claims.content.test.ts', 'test/claims.trust.test.ts'] },
  // The SEIPDv2 reader's authentication (SeipdReader: chunks, final tag, truncation) against seipd.test.ts's
  // damage suites only: the whole crypto group costs ~20 s a mutant on two shared cores.
  'seipd-reader': { mutate: ['src/crypto/seipd-decrypt.ts:114-196'], tests: ['test/seipd.test.ts'], only: '^(damage|decryptPacket)' },
};
const name = process.env.MUTATION_GROUP ?? '';
const group = groups[name];
if (!group) throw new Error(`MUTATION_GROUP must be one of ${Object.keys(groups).join(', ')}`);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'command',
  commandRunner: { command: `node --import tsx --test --test-concurrency=1 ${group.only ? `--test-name-pattern='${group.only}' ` : ''}${group.tests.join(' ')}` },
  mutate: group.mutate,
  coverageAnalysis: 'off',
  // Two cores, shared with other people's tests: one mutant at a time unless told otherwise.
  concurrency: Number(process.env.MUTATION_CONCURRENCY ?? 1),
  // No incremental mode: the command runner cannot tell which tests changed, so reused results go stale.
  reporters: ['clear-text', 'json', 'progress'],
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: true, reportScoreTable: true },
  timeoutMS: 30_000,
  tempDirName: '.stryker-tmp',
  // The sandbox needs src/, test/ and the built addon (dist/platform), not the rest of dist/ or the chart.
  ignorePatterns: ['/dist/*', '!/dist/platform', '/reports', '/.cache', '/bench', '/helm', '/k8s', '/docs'],
  cleanTempDir: 'always',
};

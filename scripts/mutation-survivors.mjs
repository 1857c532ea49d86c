// Lists the surviving mutants of StrykerJS JSON reports (reports/mutation/*.json), one line each,
// and the score per file: what docs/TESTING.md "Mutation testing" is written from.
import { readFileSync } from 'node:fs';

for (const report of process.argv.slice(2)) {
  const { files } = JSON.parse(readFileSync(report, 'utf8'));
  for (const [file, { source, mutants }] of Object.entries(files)) {
    const lines = source.split('\n');
    const count = (s) => mutants.filter((m) => s.includes(m.status)).length;
    const detected = count(['Killed', 'Timeout']);
    const valid = detected + count(['Survived', 'NoCoverage']);
    const counts = ['Killed', 'Timeout', 'Survived', 'NoCoverage'].map((k) => `${k.toLowerCase()} ${count([k])}`).join(', ');
    console.log(`${file}: ${((100 * detected) / valid).toFixed(1)}% (${detected} of ${valid} detected: ${counts})`);
    for (const m of mutants.filter((x) => x.status === 'Survived' || x.status === 'NoCoverage')) {
      const { line, column } = m.location.start;
      console.log(`  ${line}:${column} ${m.mutatorName} -> ${JSON.stringify(m.replacement).slice(0, 90)}  | ${lines[line - 1].trim().slice(0, 100)}`);
    }
  }
}

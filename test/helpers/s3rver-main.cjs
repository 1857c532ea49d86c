// Runs s3rver in its own process (so its CPU and memory stay out of the measured one) and prints its port.
// It exits when its parent goes away (stdin closes), so a killed test run leaves no server behind.
'use strict';
process.stdin.on('close', () => process.exit(0)).resume();
const S3rver = require('s3rver');
const [directory, ...buckets] = process.argv.slice(2);
new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: buckets.map((name) => ({ name })) })
  .run()
  .then((address) => process.stdout.write(`${JSON.stringify({ port: address.port })}\n`))
  .catch((err) => {
    process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  });

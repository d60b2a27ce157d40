// An HTTP service traced by aws-xray-sdk-core with centralized sampling: the SDK fetches its rules from the daemon
// address (AWS_XRAY_DAEMON_ADDRESS), decides each request by them, and reports its counts to SamplingTargets.
// Usage: node xray_sampling.js <requests> <seconds to stay up after them>
const http = require('http');
const AWSXRay = require('aws-xray-sdk-core');

const [requests, linger] = process.argv.slice(2).map(Number);
AWSXRay.middleware.setDefaultName('backend-flask');

const server = http.createServer((req, res) => {
  AWSXRay.middleware.traceRequestResponseCycle(req, res);
  res.end('{"activities": []}');
});

function get(port, path) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      res.resume();
      res.on('end', resolve);
    }).on('error', reject);
  });
}

server.listen(0, '127.0.0.1', async () => {
  const { port } = server.address();
  // The first decision starts the rule poller; give it a moment to load the rules before counting.
  await get(port, '/warm-up');
  await new Promise((r) => setTimeout(r, 1500));
  for (let i = 0; i < requests; i += 1) await get(port, '/api/activities/home');
  // The target poller reports the rule's counts every 10 s (plus jitter).
  setTimeout(() => server.close(() => process.exit(0)), linger * 1000);
});

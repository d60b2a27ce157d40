// Reports one error and one message with the rollbar SDK, configured as the README says: only `endpoint` changes.
// Usage: node rollbar_report.js <endpoint> <access token>
const Rollbar = require('rollbar');

const [endpoint, accessToken] = process.argv.slice(2);
const rollbar = new Rollbar({ accessToken, endpoint, environment: 'production', captureUncaught: false });

function report(send) {
  return new Promise((resolve, reject) => send((err, resp) => (err ? reject(err) : resolve(resp))));
}

(async () => {
  const failure = new TypeError('cannot read the activities of a ghost user');
  const answers = [
    await report((done) => rollbar.error(failure, done)),
    await report((done) => rollbar.warning('the home feed took longer than a second', done)),
  ];
  console.log(JSON.stringify(answers));
})().catch((err) => {
  console.error(`rollbar report failed: ${err && err.message}`);
  process.exit(1);
});

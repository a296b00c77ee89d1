// Follow a server's console and start it again whenever it crashes.
//
//   node watchdog.js <url> <email> <password> <server-id>
//
// `watch` is exported for embedding (and for the SDK's tests).
'use strict';

const { Catalyst } = require('..');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Print new console lines of `serverId` and restart it after each crash, until `signal`
 * aborts. Returns how many restarts it made.
 */
async function watch(c, serverId, { signal, onLine = (l) => console.log(l.line), every = 200 } = {}) {
  let after;
  let restarts = 0;
  while (!signal || !signal.aborted) {
    const lines = await c.logs(serverId, after === undefined ? { limit: 100 } : { after, limit: 1000 });
    for (const line of lines) {
      onLine(line);
      after = Math.max(after ?? line.seq, line.seq);
    }
    const server = await c.getServer(serverId);
    if (server.state === 'crashed') {
      console.error(`${server.name} crashed; starting it again`);
      await c.start(serverId);
      restarts += 1;
    }
    await sleep(every);
  }
  return restarts;
}

module.exports = { watch };

if (require.main === module) {
  const [url, email, password, serverId] = process.argv.slice(2);
  if (!serverId) {
    console.error('usage: node watchdog.js <url> <email> <password> <server-id>');
    process.exit(2);
  }
  Catalyst.login(url, email, password)
    .then((c) => watch(c, serverId))
    .catch((e) => {
      console.error(`${e.code ?? 'error'}: ${e.message}`);
      process.exit(1);
    });
}

// Stream a server's console and start it again whenever it crashes.
//
//   node watchdog.js <url> <email> <password> <server-id>
//
// `watch` is exported for embedding (and for the SDK's tests).
'use strict';

const { Catalyst } = require('..');

/**
 * Print `serverId`'s console lines as they come and restart it after each crash, until
 * `signal` aborts or the server is deleted. Returns how many restarts it made.
 */
async function watch(c, serverId, { signal, onLine = (l) => console.log(l.line) } = {}) {
  const events = await c.events(serverId);
  signal?.addEventListener('abort', () => events.close(), { once: true });
  let restarts = 0;
  for await (const event of events) {
    if (event.type === 'server_log') {
      onLine(event);
    } else if (event.type === 'server_state_update' && event.to === 'crashed') {
      console.error(`${serverId} crashed (${event.reason ?? 'no reason'}); starting it again`);
      await c.start(serverId);
      restarts += 1;
    }
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

// Catalyst for Node.js. The native module (catalyst.node, built by `cargo build`) does the
// work; this file only turns its errors into `CatalystError`s with Catalyst's `code`.
'use strict';

const native = require('./catalyst.node');

class CatalystError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'CatalystError';
    this.code = code;
  }
}

function rethrow(e) {
  const m = /^\[([a-z_]+)\] ([\s\S]*)$/.exec(e && e.message);
  throw m ? new CatalystError(m[1], m[2]) : e;
}

class Catalyst {
  constructor(inner) {
    this.inner = inner;
  }

  /** Run the control plane in this process (`sqlite:<path>` or `postgres://…`). */
  static async embedded(databaseUrl, options = {}) {
    const inner = await native.Catalyst.embedded(databaseUrl, options.dataDir ?? null, options.localNode ?? null, options.allowUnconfined ?? null).catch(rethrow);
    return new Catalyst(inner);
  }

  /** A catalyst-server at `url` with an access token or an API key. */
  static connect(url, credential) {
    try {
      return new Catalyst(native.Catalyst.connect(url, credential));
    } catch (e) {
      return rethrow(e);
    }
  }

  /** Log in to a catalyst-server at `url`. */
  static async login(url, email, password) {
    return new Catalyst(await native.Catalyst.login(url, email, password).catch(rethrow));
  }
}

for (const name of Object.getOwnPropertyNames(native.Catalyst.prototype)) {
  if (name === 'constructor') continue;
  Catalyst.prototype[name] = function (...args) {
    try {
      return this.inner[name](...args).catch(rethrow);
    } catch (e) {
      return Promise.reject(e).catch(rethrow);
    }
  };
}

/**
 * A live feed as an async iterator: `for await (const e of await c.events(id))`. Breaking out
 * ends it; so does `close()`, even while the loop waits for the next event.
 */
function iterate(feed) {
  const events = (async function* () {
    try {
      for (;;) {
        const item = await feed.next().catch(rethrow);
        if (item === null) return;
        yield item;
      }
    } finally {
      feed.close();
    }
  })();
  events.close = () => feed.close();
  return events;
}

// `await using c = await Catalyst.embedded(...)` closes `c` at the end of the block (where the
// runtime knows `Symbol.asyncDispose`).
if (typeof Symbol.asyncDispose === 'symbol') {
  Catalyst.prototype[Symbol.asyncDispose] = function () {
    return this.close();
  };
}

for (const name of ['events', 'console']) {
  Catalyst.prototype[name] = async function (serverId, since) {
    return iterate(await this.inner[name](serverId, since ?? null).catch(rethrow));
  };
}

module.exports = { Catalyst, CatalystError };

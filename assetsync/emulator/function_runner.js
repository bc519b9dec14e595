'use strict';
// assetsync's Node runner for one Function invocation (see functions_runtime.py, which starts
// it as `node function_runner.js MARK` and writes the request as JSON on stdin). It sets up what
// Twilio's runtime gives a function: the `Twilio` global (the project's own `twilio` package
// plus `Twilio.Response`), `Runtime`, and `context.getTwilioClient()`; then calls
// `exports.handler(context, event, callback)` and writes the reply after MARK on stdout.
const fs = require('fs');
const util = require('util');

const MARK = process.argv[2];
const TWIML_CLASSES = ['VoiceResponse', 'MessagingResponse', 'FaxResponse'];

// What the code writes with console.* is kept, in order, as [level, message] and sent back with
// the reply: the emulator records each as a Log resource (Twilio's levels: log/info/debug are
// INFO, warn WARN, error ERROR). It still goes to stderr, where a crash's last words are read.
const LEVELS = { log: 'INFO', info: 'INFO', debug: 'INFO', trace: 'INFO', warn: 'WARN', error: 'ERROR' };
const logged = [];
for (const name of Object.keys(LEVELS)) {
  console[name] = (...args) => {
    const message = util.format(...args);
    logged.push([LEVELS[name], message]);
    process.stderr.write(message + '\n');
  };
}

let replied = false;
function reply(status, headers, body) {
  if (replied) return;
  replied = true;
  const text = JSON.stringify({ status, headers, body: body.toString('base64'), logs: logged });
  process.stdout.write(MARK + text + '\n', () => process.exit(0));
}

function hasHeader(headers, name) {
  return headers.some(([key]) => String(key).toLowerCase() === name);
}

// As Express's res.send: bytes as they are, a string as text, anything else as JSON.
function send(status, headers, value, stringType) {
  let body = Buffer.alloc(0);
  let type = null;
  if (value === undefined || value === null) {
    body = Buffer.alloc(0);
  } else if (Buffer.isBuffer(value)) {
    body = value;
    type = 'application/octet-stream';
  } else if (typeof value === 'string') {
    body = Buffer.from(value, 'utf8');
    type = stringType;
  } else {
    body = Buffer.from(JSON.stringify(value), 'utf8');
    type = 'application/json; charset=utf-8';
  }
  if (type && !hasHeader(headers, 'content-type')) headers.push(['Content-Type', type]);
  reply(status, headers, body);
}

// Thrown wherever the code reaches for the `twilio` package when the project has none: the
// function then answers one plain line saying what to do instead of a stack trace.
class MissingTwilioPackage extends Error {}

function fail(err) {
  // An error the code throws (or passes to callback) is logged as Twilio logs it: at ERROR.
  if (!replied) logged.push(['ERROR', err instanceof Error ? String(err.stack || err) : util.format(err)]);
  if (err instanceof MissingTwilioPackage) {
    send(500, [], err.message + '\n', 'text/plain; charset=utf-8');
  } else if (err instanceof Error) {
    send(500, [], { message: err.message, name: err.name, stack: err.stack }, '');
  } else {
    send(500, [], err, 'text/html; charset=utf-8');
  }
}

class TwilioResponse {
  constructor(options) {
    const given = options || {};
    this.statusCode = given.statusCode || 200;
    this.body = given.body === undefined ? null : given.body;
    this.headers = Object.assign({}, given.headers || {});
  }
  setStatusCode(code) { this.statusCode = code; return this; }
  setBody(body) { this.body = body; return this; }
  setHeaders(headers) {
    if (headers && typeof headers === 'object') this.headers = Object.assign({}, headers);
    return this;
  }
  appendHeader(key, value) {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      throw new Error('Header value cannot be an object');
    }
    const old = this.headers[key];
    this.headers[key] = old === undefined ? value : [].concat(old, value);
    return this;
  }
  setCookie(key, value, attributes) {
    const extra = attributes && attributes.length ? ';' + attributes.join(';') : '';
    return this.appendHeader('Set-Cookie', key + '=' + value + extra);
  }
  removeCookie(key) {
    const kept = [].concat(this.headers['Set-Cookie'] || [])
      .filter((c) => typeof c === 'string' && !c.startsWith(key + '='));
    this.headers['Set-Cookie'] = kept.concat([key + '=;Max-Age=0']);
    return this;
  }
}

function pairs(headers) {
  const out = [];
  for (const [key, value] of Object.entries(headers || {})) {
    for (const one of [].concat(value)) out.push([key, String(one)]);
  }
  return out;
}

// A TwiML document (twilio.twiml.*Response) is sent as XML, as the Toolkit's runtime does.
// A function that loaded another copy of the package still gets XML: the class name decides.
function isTwiml(payload, twilio) {
  if (!payload || typeof payload !== 'object') return false;
  const classes = twilio && twilio.twiml ? twilio.twiml : {};
  if (TWIML_CLASSES.some((name) => classes[name] && payload instanceof classes[name])) return true;
  const ctor = payload.constructor;
  return Boolean(ctor && TWIML_CLASSES.includes(ctor.name) && typeof payload.toString === 'function'
    && payload.toString !== Object.prototype.toString);
}

function makeCallback(twilio) {
  return function callback(err, payload) {
    if (err) return fail(err);
    if (payload instanceof TwilioResponse) {
      const status = Number(payload.statusCode);
      return send(status, pairs(payload.headers), payload.body, 'text/html; charset=utf-8');
    }
    if (isTwiml(payload, twilio)) {
      return send(200, [['Content-Type', 'text/xml; charset=utf-8']], payload.toString(), '');
    }
    return send(200, [], payload, 'text/plain; charset=utf-8');
  };
}

// The project's own `twilio` (twilio-run resolves it from the project's node_modules too);
// null when it is not installed. A package that is there but fails to load is the function's
// error, reported as such.
function loadTwilio(req) {
  let resolved;
  try {
    resolved = require.resolve('twilio', { paths: [req.base_dir] });
  } catch (err) {
    return null;
  }
  return require(resolved);
}

function missingTwilio(req) {
  const where = req.project_dir || 'the project folder (where package.json is)';
  return new MissingTwilioPackage(
    'The function ' + req.path + ' uses the twilio package, which is not installed: run ' +
    '`npm install twilio` in ' + where + ' (or `npm install` when package.json lists it), ' +
    'then call it again.');
}

// `Twilio` is the package's exports plus `Response`. Without the package only `Response`
// works; anything else (`Twilio.twiml`, ...) throws the one-line npm install error.
function twilioGlobal(twilio, req) {
  if (twilio) return Object.assign({}, twilio, { Response: TwilioResponse });
  return new Proxy({ Response: TwilioResponse }, {
    get(target, prop) {
      if (prop === 'Response') return TwilioResponse;
      if (typeof prop === 'symbol' || prop === 'then' || prop === 'toJSON') return undefined;
      throw missingTwilio(req);
    },
  });
}

// Requests to Serverless (serverless[.edge][.region].twilio.com) go to the emulator, which
// serves that API; any other Twilio host (api.twilio.com for Messages and Calls, ...) is not
// emulated: the request is refused here and nothing leaves the machine.
function emulatorHttpClient(twilio, apiUrl) {
  const base = new URL(apiUrl);
  class EmulatorHttpClient extends twilio.RequestClient {
    request(opts) {
      const target = new URL(opts.uri);
      const host = target.hostname;
      if (!(host.split('.')[0] === 'serverless' && host.endsWith('.twilio.com'))) {
        return Promise.reject(new Error(
          'context.getTwilioClient(): ' + String(opts.method).toUpperCase() + ' ' +
          target.origin + target.pathname + ' is not emulated: the assetsync emulator serves ' +
          'only the Serverless API (serverless.twilio.com)'));
      }
      target.protocol = base.protocol;
      target.host = base.host;
      return super.request(Object.assign({}, opts, { uri: target.href }));
    }
  }
  return new EmulatorHttpClient({ keepAlive: false });
}

function makeGetTwilioClient(twilio, req) {
  return function getTwilioClient(options) {
    if (!twilio) throw missingTwilio(req);
    if (!req.credentials) {
      throw new Error('context.getTwilioClient(): the service was created with ' +
        'IncludeCredentials=false, so its functions get no account credentials');
    }
    if (!req.api_url) {
      throw new Error('context.getTwilioClient(): this emulator has no address to call back');
    }
    const [accountSid, authToken] = req.credentials;
    return twilio(accountSid, authToken, Object.assign({ lazyLoading: true }, options || {}, {
      httpClient: emulatorHttpClient(twilio, req.api_url),
    }));
  };
}

function runtimeGlobal(req) {
  const functions = {};
  for (const [key, file] of Object.entries(req.functions)) functions[key] = { path: file };
  const assets = {};
  for (const [key, file] of Object.entries(req.assets)) {
    // Twilio's open() reads the private asset's content as UTF-8 text.
    assets[key] = { path: file, open: () => fs.readFileSync(file, 'utf8') };
  }
  return {
    getFunctions: () => functions,
    getAssets: () => assets,
    getSync: () => { throw new Error('Runtime.getSync() is not available in the emulator'); },
  };
}

function start(req) {
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  let twilio = null;
  let handler;
  try {
    twilio = loadTwilio(req);
    global.Twilio = twilioGlobal(twilio, req);
    global.Runtime = runtimeGlobal(req);
    // The Toolkit's runtime also sets these older globals.
    global.Functions = global.Runtime.getFunctions();
    global.Response = TwilioResponse;
    // Content is stored by digest, without an extension: Node loads such a file as CommonJS.
    const loaded = require(req.file);
    handler = loaded && loaded.handler;
  } catch (err) {
    return fail(err);
  }
  if (typeof handler !== 'function') {
    return fail(new Error('Could not find a "handler" function in ' + req.path));
  }
  const context = Object.assign({}, req.context, {
    getTwilioClient: makeGetTwilioClient(twilio, req),
  });
  try {
    const result = handler(context, req.event, makeCallback(twilio));
    if (result && typeof result.catch === 'function') result.catch(fail);
  } catch (err) {
    fail(err);
  }
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => start(JSON.parse(input)));

// Lamina's Node.js runtime (nodejs20.x): a Runtime API client (runtime-api.md §1) that loads
// the function's handler and serves invocations the way AWS's runtime interface client does
// (aws-lambda-nodejs-runtime-interface-client: UserFunction.js, Runtime.js, CallbackContext.js,
// LogPatch.js, Errors.js). The environment's bridge (lamina_inside/runtime_api.py) starts it as
// `node /var/runtime/runtime.mjs` with AWS_LAMBDA_RUNTIME_API set. Built-in modules only.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import util from 'node:util';

const require = createRequire(import.meta.url);
const BASE = '/2018-06-01/runtime';
const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
const TENANT_ID = Symbol.for('aws.lambda.runtime.tenantId');
const [API_HOST, API_PORT] = (process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001').split(':');

// --- errors (Errors.js) ----------------------------------------------------------------------

function runtimeError(name) {
  const cls = class extends Error {};
  cls.prototype.name = `Runtime.${name}`;
  return cls;
}
const ImportModuleError = runtimeError('ImportModuleError');
const HandlerNotFound = runtimeError('HandlerNotFound');
const MalformedHandlerName = runtimeError('MalformedHandlerName');
const UserCodeSyntaxError = runtimeError('UserCodeSyntaxError');
const UnhandledPromiseRejection = runtimeError('UnhandledPromiseRejection');
const NodeJsExit = runtimeError('NodeJsExit');

function isErrorLike(obj) {
  return Boolean(obj && typeof obj.name === 'string' && obj.name && typeof obj.message === 'string'
    && obj.message && typeof obj.stack === 'string' && obj.stack);
}

/** The document posted to `/error`: {errorType, errorMessage, trace}. */
function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || isErrorLike(error)) {
      return {
        errorType: error.name?.replaceAll('\x7F', '%7F'),
        errorMessage: error.message?.replaceAll('\x7F', '%7F'),
        trace: error.stack.replaceAll('\x7F', '%7F').split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage: 'callback called with Error argument, but there was a problem while '
        + 'retrieving one or more of its message, name, and stack',
    };
  }
}

function withEnumerableProperties(value) {
  if (!(value instanceof Error)) return value;
  const formatted = Object.assign(
    { errorType: value.name, errorMessage: value.message, code: value.code }, value);
  if (typeof value.stack === 'string') formatted.stack = value.stack.split('\n');
  return formatted;
}

/** What AWS logs after "Invoke Error" / "Uncaught Exception": a tab, then the error as JSON. */
function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_key, value) => withEnumerableProperties(value));
  } catch {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

// --- console (LogPatch.js, stdout flavour) ----------------------------------------------------

const LEVELS = {
  TRACE: { name: 'TRACE', priority: 1 },
  DEBUG: { name: 'DEBUG', priority: 2 },
  INFO: { name: 'INFO', priority: 3 },
  WARN: { name: 'WARN', priority: 4 },
  ERROR: { name: 'ERROR', priority: 5 },
  FATAL: { name: 'FATAL', priority: 6 },
};

function jsonErrorReplacer(_key, value) {
  if (!(value instanceof Error)) return value;
  return Object.assign({
    errorType: value?.constructor?.name ?? 'UnknownError',
    errorMessage: value.message,
    stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
  }, value);
}

function formatJson(time, level, message, params) {
  const record = { timestamp: time, level: level.name, requestId: globalThis[REQUEST_ID] };
  const tenantId = globalThis[TENANT_ID];
  if (tenantId !== undefined && tenantId !== null) record.tenantId = tenantId;
  if (params.length === 0) {
    record.message = message;
    try {
      return JSON.stringify(record, jsonErrorReplacer);
    } catch {
      record.message = util.format(message);
      return JSON.stringify(record);
    }
  }
  record.message = util.format(message, ...params);
  for (const param of [message, ...params]) {
    if (param instanceof Error) {
      record.errorType = param?.constructor?.name ?? 'UnknownError';
      record.errorMessage = param.message;
      record.stackTrace = typeof param.stack === 'string' ? param.stack.split('\n') : [];
      break;
    }
  }
  return JSON.stringify(record);
}

function patchConsole() {
  const json = process.env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON';
  const write = json
    ? (level, message, params) => {
      const line = formatJson(new Date().toISOString(), level, message, params);
      process.stdout.write(line.replace(/\n/g, '\r') + '\n');
    }
    : (level, message, params) => {
      const line = `${new Date().toISOString()}\t${globalThis[REQUEST_ID]}\t${level.name}\t`
        + util.format(message, ...params);
      // One record per line: AWS turns newlines into carriage returns on stdout.
      process.stdout.write(line.replace(/\n/g, '\r') + '\n');
    };
  const minimum = LEVELS[process.env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase()] ?? LEVELS.TRACE;
  const logger = (level) => (level.priority >= minimum.priority
    ? (message, ...params) => write(level, message, params)
    : () => {});
  console.trace = logger(LEVELS.TRACE);
  console.debug = logger(LEVELS.DEBUG);
  console.info = logger(LEVELS.INFO);
  console.log = console.info;
  console.warn = logger(LEVELS.WARN);
  console.error = logger(LEVELS.ERROR);
  console.fatal = (message, ...params) => write(LEVELS.FATAL, message, params);
}

// --- the Runtime API client -------------------------------------------------------------------

// A lean HTTP/1.1 client over kept-alive sockets (node:http costs ~0.2 ms more per call). The
// bridge answers every request with a Content-Length body, in order, so requests may be
// pipelined: an answer goes out together with the `next` that follows it (one write, one wakeup
// of the bridge). An idle socket is unref'd: it must not keep the event loop alive
// (callbackWaitsForEmptyEventLoop relies on that).
const idle = [];

function request(method, urlPath, body = '', headers = {}) {
  const payload = Buffer.from(body, 'utf8');
  let head = `${method} ${urlPath} HTTP/1.1\r\nHost: ${API_HOST}:${API_PORT}\r\n`
    + `Content-Length: ${payload.length}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return [Buffer.from(head + '\r\n', 'latin1'), payload];
}

/** Send requests (each [head, body]) in one write; a promise of each one's response. */
function send(...requests) {
  const socket = idle.pop() ?? connect();
  socket.ref();
  const answers = requests.map(() => new Promise((resolve, reject) => {
    socket.inFlight.push({ resolve, reject });
  }));
  socket.write(Buffer.concat(requests.flat()));
  // A pipelined `next` is awaited later: its failure must not count as an unhandled rejection.
  for (const answer of answers) answer.catch(() => {});
  return answers;
}

function connect() {
  const socket = net.connect({ host: API_HOST, port: Number(API_PORT), noDelay: true });
  socket.inFlight = [];
  let buffer = null;
  socket.on('data', (chunk) => {
    buffer = buffer ? Buffer.concat([buffer, chunk]) : chunk;
    let parsed;
    while (socket.inFlight.length && (parsed = parseResponse(buffer))) {
      buffer = parsed.rest.length ? parsed.rest : null;
      const waiter = socket.inFlight.shift();
      if (!socket.inFlight.length) {
        socket.unref();
        idle.push(socket);
      }
      waiter.resolve(parsed.response);
      if (!buffer) break;
    }
  });
  const fail = (error) => {
    const index = idle.indexOf(socket);
    if (index >= 0) idle.splice(index, 1);
    const waiters = socket.inFlight.splice(0);
    for (const waiter of waiters) {
      waiter.reject(error ?? new Error('the Runtime API closed the connection'));
    }
  };
  socket.on('error', fail);
  socket.on('close', () => fail());
  return socket;
}

function parseResponse(buffer) {
  const end = buffer.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = buffer.toString('latin1', 0, end).split('\r\n');
  const headers = {};
  for (let i = 1; i < lines.length; i += 1) {
    const colon = lines[i].indexOf(':');
    headers[lines[i].slice(0, colon).trim().toLowerCase()] = lines[i].slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  const stop = end + 4 + length;
  if (buffer.length < stop) return null;
  const status = Number(lines[0].split(' ')[1]);
  const response = { status, headers, body: buffer.toString('utf8', end + 4, stop) };
  return { response, rest: buffer.subarray(stop) };
}

const NEXT = request('GET', `${BASE}/invocation/next`);

function errorHeaders(document) {
  const type = String(document.errorType ?? '');
  return {
    'Content-Type': 'application/json',
    // A header value must be printable: a strange error name still reaches the caller
    // through the body, which the Runtime API prefers anyway.
    'Lambda-Runtime-Function-Error-Type': /^[\x20-\x7e]+$/.test(type) ? type : 'Function.Unknown',
  };
}

function errorRequest(urlPath, error) {
  const document = toRapidResponse(error);
  return request('POST', urlPath, JSON.stringify(document), errorHeaders(document));
}

function postError(urlPath, error) {
  return send(errorRequest(urlPath, error))[0];
}

/** Report an invocation's error and ask for the next one: [posted, next]. */
function postInvocationError(error, id) {
  return send(errorRequest(`${BASE}/invocation/${id}/error`, error), NEXT);
}

/** Report an invocation's result and ask for the next one: [posted, next]. */
function postInvocationResponse(result, id) {
  let text;
  try {
    text = JSON.stringify(result === undefined ? null : result) ?? 'null';
  } catch {
    return postInvocationError(new Error('Unable to stringify response body'), id);
  }
  const answer = request('POST', `${BASE}/invocation/${id}/response`, text, {
    'Content-Type': 'application/json',
  });
  return send(answer, NEXT);
}

// --- loading the handler (UserFunction.js) ----------------------------------------------------

function tryRequireFile(file, extension = '') {
  const target = file + extension;
  return fs.existsSync(target) ? require(target) : undefined;
}

async function tryImport(file, extension) {
  const target = file + extension;
  return fs.existsSync(target) ? await import(target) : undefined;
}

function folderIsModule(folder) {
  if (folder.endsWith('/node_modules')) return false;
  const manifest = path.join(folder, 'package.json');
  if (fs.existsSync(manifest)) {
    try {
      const parsed = JSON.parse(fs.readFileSync(manifest));
      if (parsed) return parsed.type === 'module';
    } catch (error) {
      console.warn(`${manifest} cannot be read, it will be ignored for ES module detection `
        + 'purposes.', error);
      return false;
    }
  }
  return folder === '/' ? false : folderIsModule(path.resolve(folder, '..'));
}

async function tryLoad(appRoot, moduleRoot, module) {
  const lambdaPath = path.resolve(appRoot, moduleRoot, module);
  const extensionless = tryRequireFile(lambdaPath);
  if (extensionless) return extensionless;
  const esm = fs.existsSync(lambdaPath + '.js') && folderIsModule(path.dirname(lambdaPath));
  if (!esm) {
    const loaded = tryRequireFile(lambdaPath, '.js');
    if (loaded) return loaded;
  }
  const loaded = (esm && (await tryImport(lambdaPath, '.js')))
    || (await tryImport(lambdaPath, '.mjs'))
    || tryRequireFile(lambdaPath, '.cjs');
  if (loaded) return loaded;
  // Node's own resolution from the task root: a package in node_modules, say.
  return require(require.resolve(module, { paths: [appRoot, moduleRoot] }));
}

async function loadHandler(appRoot, fullHandler) {
  if (fullHandler.includes('..')) {
    throw new MalformedHandlerName(`'${fullHandler}' is not a valid handler name. Use absolute `
      + 'paths when specifying root directories in handler names.');
  }
  const handlerString = path.basename(fullHandler);
  const moduleRoot = fullHandler.substring(0, fullHandler.indexOf(handlerString));
  const match = handlerString.match(/^([^.]*)\.(.*)$/);
  if (!match) throw new MalformedHandlerName('Bad handler');
  const [, module, handlerPath] = match;
  let app;
  try {
    app = await tryLoad(appRoot, moduleRoot, module);
  } catch (error) {
    if (error instanceof SyntaxError) throw new UserCodeSyntaxError(error);
    if (error?.code === 'MODULE_NOT_FOUND' || error?.code === 'ERR_MODULE_NOT_FOUND') {
      throw new ImportModuleError(error);
    }
    throw error;
  }
  const handler = handlerPath.split('.').reduce((nested, key) => nested && nested[key], app);
  if (!handler) throw new HandlerNotFound(`${fullHandler} is undefined or not exported`);
  if (typeof handler !== 'function') throw new HandlerNotFound(`${fullHandler} is not a function`);
  return handler;
}

// --- invocations (Runtime.js, CallbackContext.js) ---------------------------------------------

let beforeExit = () => {}; // what to do when the event loop runs dry
const noop = () => {};
const errorCallbacks = {
  uncaughtException: (error) => exitAfter(postError(`${BASE}/init/error`, error), 129),
  unhandledRejection: (error) => exitAfter(postError(`${BASE}/init/error`, error), 128),
};

function exitAfter(posted, code) {
  posted.then(() => process.exit(code), () => process.exit(code));
}

function fatal(error) {
  console.log(`Unexpected Top Level Error: ${error}`);
  errorCallbacks.uncaughtException(error);
}

function scheduleNext(next) {
  setImmediate(() => invokeOnce(next).catch(fatal));
}

function parseJsonHeader(value) {
  return value === undefined ? undefined : JSON.parse(value);
}

function buildContext(headers, id, scheduleNextAfter) {
  let completed = false;
  let waitForEmptyEventLoop = true;
  const postErr = (err) => {
    console.error('Invoke Error', toFormatted(intoError(err)));
    scheduleNextAfter(postInvocationError(err, id));
  };
  const complete = (result) => {
    if (completed) {
      console.error('Invocation has already been reported as done. Cannot call complete more '
        + 'than once per invocation.');
      return;
    }
    completed = true;
    scheduleNextAfter(postInvocationResponse(result, id));
  };
  let finished = false;
  const once = (fn) => (...args) => {
    if (!finished) {
      finished = true;
      fn(...args);
    }
  };
  const callback = once((err, result) => {
    beforeExit = noop;
    if (err !== undefined && err !== null) {
      postErr(err);
    } else if (!waitForEmptyEventLoop) {
      complete(result);
    } else {
      beforeExit = () => {
        beforeExit = noop;
        setImmediate(() => complete(result));
      };
    }
  });
  const done = (err, result) => {
    beforeExit = noop;
    if (err !== undefined && err !== null) postErr(err);
    else complete(result);
  };
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  const env = process.env;
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: once((result) => done(null, result)),
    fail: once((err) => done(err === undefined || err === null ? 'handled' : err, null)),
    done: once(done),
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseJsonHeader(headers['lambda-runtime-client-context']),
    identity: parseJsonHeader(headers['lambda-runtime-cognito-identity']),
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    awsRequestId: id,
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
  const tenantId = headers['lambda-runtime-aws-tenant-id'];
  if (tenantId !== undefined) context.tenantId = tenantId;
  return [callback, context, () => { completed = true; }];
}

async function invokeOnce(next) {
  const { status, headers, body } = await (next ?? send(NEXT)[0]);
  if (status !== 200) throw new Error(`invocation/next answered ${status}: ${body}`);
  const id = headers['lambda-runtime-aws-request-id'];
  globalThis[REQUEST_ID] = id;
  globalThis[TENANT_ID] = headers['lambda-runtime-aws-tenant-id'];
  const trace = headers['lambda-runtime-trace-id'];
  if (trace) process.env._X_AMZN_TRACE_ID = trace;
  else delete process.env._X_AMZN_TRACE_ID;

  // Once the answer is in, serve the `next` that went out with it.
  const after = ([posted, nextOne]) => posted.then(() => scheduleNext(nextOne), fatal);
  const [callback, context, markCompleted] = buildContext(headers, id, after);
  const invocationError = `${BASE}/invocation/${id}/error`;
  errorCallbacks.uncaughtException = (error) => exitAfter(postError(invocationError, error), 129);
  errorCallbacks.unhandledRejection = (error) => exitAfter(postError(invocationError, error), 128);
  let returnedPromise = false;
  // The loop ran dry without an answer: a handler that neither called back nor returned a
  // promise answers null; a promise that never settles is an error (the RIC's NodeJsExit).
  beforeExit = () => {
    beforeExit = noop;
    markCompleted();
    after(returnedPromise ? postInvocationError(new NodeJsExit(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most '
      + 'commonly caused by a Promise that was never settled. For more information, see '
      + 'https://nodejs.org/docs/latest/api/process.html#exit-codes'), id)
      : postInvocationResponse(null, id));
  };
  try {
    const result = handler(JSON.parse(body), context, callback);
    if (result && typeof result.then === 'function') {
      returnedPromise = true;
      result.then(context.succeed, context.fail).catch(context.fail);
    }
  } catch (error) {
    callback(error);
  }
}

// --- start ----------------------------------------------------------------------------------

patchConsole();
process.on('uncaughtException', (error) => {
  console.error('Uncaught Exception', toFormatted(error));
  errorCallbacks.uncaughtException(error);
});
process.on('unhandledRejection', (reason, promise) => {
  const error = new UnhandledPromiseRejection(reason);
  error.reason = reason;
  error.promise = promise;
  console.error('Unhandled Promise Rejection', toFormatted(error));
  errorCallbacks.unhandledRejection(error);
});
process.on('beforeExit', () => beforeExit());

let handler;
try {
  handler = await loadHandler(process.env.LAMBDA_TASK_ROOT || process.cwd(),
    process.env._HANDLER || '');
} catch (error) {
  console.error('Uncaught Exception', toFormatted(error));
  errorCallbacks.uncaughtException(error);
}
if (handler) scheduleNext();

// CommonJS handlers for tests/integration/test_nodejs.py (Handler "index.<export>").
const greeting = require('greeting'); // vendored in node_modules, as users ship dependencies

console.log('init', 'outside', { invocation: true });
let calls = 0;

exports.handler = async (event, context) => {
  calls += 1;
  return {
    event,
    calls,
    greeting: greeting('node'),
    context: {
      functionName: context.functionName,
      functionVersion: context.functionVersion,
      invokedFunctionArn: context.invokedFunctionArn,
      memoryLimitInMB: context.memoryLimitInMB,
      awsRequestId: context.awsRequestId,
      logGroupName: context.logGroupName,
      logStreamName: context.logStreamName,
      callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
      clientContext: context.clientContext ?? null,
      identity: context.identity ?? null,
    },
    remaining: context.getRemainingTimeInMillis(),
    env: {
      NODE_PATH: process.env.NODE_PATH,
      AWS_EXECUTION_ENV: process.env.AWS_EXECUTION_ENV,
      LAMBDA_TASK_ROOT: process.env.LAMBDA_TASK_ROOT,
      LAMBDA_RUNTIME_DIR: process.env.LAMBDA_RUNTIME_DIR,
      _HANDLER: process.env._HANDLER,
      AWS_LAMBDA_RUNTIME_API: process.env.AWS_LAMBDA_RUNTIME_API,
      TZ: process.env.TZ,
    },
    node: process.version,
    cwd: process.cwd(),
  };
};

// Callback style: the result object changes after the callback, when a timer fires. Waiting for
// the empty event loop (the default) sends it changed; callbackWaitsForEmptyEventLoop = false
// sends it at once.
function pending(event, context, callback) {
  const result = { timerFired: false, waits: context.callbackWaitsForEmptyEventLoop };
  setTimeout(() => {
    result.timerFired = true;
  }, 1000);
  callback(null, result);
}
exports.callbackWaits = pending;
exports.callbackNoWait = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  pending(event, context, callback);
};

exports.syncNoAnswer = () => {
  calls += 1; // neither returns a promise nor calls back: the empty loop answers null
};

exports.thrown = () => {
  throw new TypeError('bad thing');
};

class CustomError extends Error {
  constructor(message) {
    super(message);
    this.name = 'CustomError';
  }
}
exports.rejected = async () => {
  throw new CustomError('async went wrong');
};
exports.callbackError = (event, context, callback) => callback(new Error('callback failed'));
exports.callbackString = (event, context, callback) => callback('just a string');

exports.logs = async (event, context) => {
  console.log('hello %s, %d items', 'world', 3);
  console.info({ nested: { value: 1 } });
  console.warn('careful');
  console.error('broken', new Error('inside log'));
  console.debug('details');
  console.log('two\nlines');
  return context.awsRequestId;
};

exports.sleep = async (event) => {
  await new Promise((resolve) => setTimeout(resolve, event.ms));
  return 'woke';
};

exports.uncaught = () =>
  new Promise(() => {
    setTimeout(() => {
      throw new RangeError('thrown from a timer');
    }, 0);
  });

exports.nested = { deep: { handler: async () => 'nested export' } };
exports.notAFunction = 42;

module.exports.run = (event, context, callback) => callback(null, { kind: 'cjs', file: __filename });

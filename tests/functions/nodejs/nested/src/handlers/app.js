exports.handler = async (event, context) => ({ where: __filename, request: context.awsRequestId });

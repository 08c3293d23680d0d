// Drives the official Files.com JavaScript SDK (npm `files.com`, unchanged) for
// tests/compat/js_sdk.py: reads one JSON request on stdin, prints one JSON answer.
//
// Request: {"base_url", "api_key", "calls": [CALL, ...]}, where CALL is one of
//   {"model": "AutomationRun", "method": "list", "args": [...]}       a static method
//   {"model": "Automation", "find": ID, "method": "update", "args": [...]}
//                                      the method of the record `Model.find(ID)` returns
//   {"error_class_for": {"type": ..., "http-code": ...}}
//                                      the class the SDK raises for that error body
//   {"send": {"path", "verb", "params"}, "model": "AutomationRun"}
//                                      the SDK's own `Api.sendRequest` (for an endpoint the
//                                      SDK version has no method for), decoded as `model`
// Answer: one entry per call, {"value": ...} (records as their attributes) or
// {"error": {"class", "code", "type", "message"}}.

const Files = require('files.com/lib/Files.js').default
const errors = require('files.com/lib/Errors.js')

const plain = value => {
  if (Array.isArray(value)) return value.map(plain)
  if (value && typeof value === 'object' && 'attributes' in value) return value.attributes
  return value === undefined ? null : value
}

const failure = error => ({
  error: {
    class: error.constructor.name,
    code: error.code ?? null,
    type: error.type ?? null,
    message: error.message,
  },
})

const perform = async call => {
  if (call.error_class_for) {
    const body = call.error_class_for
    try {
      errors.handleErrorResponse({ response: { data: { error: 'x', ...body }, status: body['http-code'] } })
    } catch (error) {
      return { value: error.constructor.name }
    }
    return { value: null }
  }
  // eslint-disable-next-line global-require, import/no-dynamic-require
  const Model = require(`files.com/lib/models/${call.model}.js`).default
  if (call.send) {
    const Api = require('files.com/lib/Api.js').default // eslint-disable-line global-require
    const { path, verb, params } = call.send
    const response = await Api.sendRequest(path, verb, params || {}, {})
    return { value: plain(new Model(response?.data, {})) }
  }
  if (call.find !== undefined) {
    const record = await Model.find(call.find)
    return { value: plain(await record[call.method](...(call.args || []))) }
  }
  return { value: plain(await Model[call.method](...(call.args || []))) }
}

const main = async () => {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  Files.setBaseUrl(request.base_url)
  if (request.api_key) Files.setApiKey(request.api_key)
  Files.configureNetwork({ maxNetworkRetries: 0, networkTimeout: 30 })
  Files.setLogLevel(require('files.com/lib/Logger.js').default.LogLevel.NONE)
  const answers = []
  for (const call of request.calls) {
    try {
      answers.push(await perform(call))
    } catch (error) {
      answers.push(failure(error))
    }
  }
  process.stdout.write(JSON.stringify(answers))
}

main().catch(error => {
  process.stderr.write(`${error.stack}\n`)
  process.exit(2)
})

'use strict'

module.exports = require('neostandard')({
  ts: true,
  ignores: ['dist/**', 'coverage/**', '.tap/**', 'bench/results/**', 'examples/chat/public/vendor/**', 'test-results/**']
})

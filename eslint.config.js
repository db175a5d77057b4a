'use strict'

module.exports = require('neostandard')({
  ts: true,
  filesTs: ['**/*.mts'],
  ignores: ['dist/**', 'coverage/**', '.tap/**', 'bench/results/**', 'examples/chat/public/vendor/**', 'test-results/**']
})

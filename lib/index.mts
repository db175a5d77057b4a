/**
 * The ES module entry of the package (the `import` condition of `.`): a wrapper around the
 * CommonJS build, so that there is one instance of the plugin whichever way it is loaded. It
 * re-exports every named export, and makes the default export the plugin itself: a plain CommonJS
 * module can only offer `exports.default`, which Node's `import x from` does not unwrap.
 */
import cjs from './index.js'

export * from './index.js'
export default cjs.default

/**
 * The script each emscripten pthread of the threaded SIMD wasm build runs
 * (a Node worker thread). tfjs ships the worker's source only as a string
 * and, in a browser, starts it from a blob: URL, which Node's Worker does
 * not accept; this file runs that same string from disk instead.
 */
const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as { wasmWorkerContents: string };

// The string holds "\n" escapes that tfjs's template literal turned into
// real newlines inside string literals; escape them back, as tfjs does
// before it makes its blob.
new Function('require', '__filename', wasmWorkerContents.replace(/\n/g, '\\n'))(require, __filename);

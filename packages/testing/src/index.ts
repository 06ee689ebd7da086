/**
 * @module @ferry/testing
 *
 * The contract suites every Ferry adapter runs (STYLE.md 3) and helpers for tests.
 */
export * from './broker.contract.js';
export * from './tcp-proxy.js';
export * from './wait-for.js';
